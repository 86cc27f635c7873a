// GroupSync: commits waiting together share fsyncs, and nobody returns
// before an fsync that started after its write has finished.
#include "unipool/directory/group_sync.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace unipool {
namespace {

TEST(GroupSyncTest, OneWaiterRunsOneSyncAndAWaitForADurableTicketRunsNone) {
  int calls = 0;
  GroupSync sync([&] {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_TRUE(sync.WaitDurable(0).ok());
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(sync.HasUnsynced());
  uint64_t ticket = sync.Written();
  EXPECT_TRUE(sync.HasUnsynced());
  EXPECT_TRUE(sync.WaitDurable(ticket).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(sync.WaitDurable(ticket).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(sync.HasUnsynced());
  EXPECT_TRUE(sync.SyncAll().ok());  // nothing new: no fsync
  EXPECT_EQ(calls, 1);
}

// The first commit's fsync is held while seven more commits write and wait:
// they all share the next fsync, so eight commits cost two fsyncs.
TEST(GroupSyncTest, CommitsArrivingDuringAnFsyncShareTheNextOne) {
  absl::Notification first_started, release_first;
  std::atomic<int> calls{0};
  GroupSync sync([&] {
    if (calls.fetch_add(1) == 0) {
      first_started.Notify();
      release_first.WaitForNotification();
    }
    return absl::OkStatus();
  });
  uint64_t first = sync.Written();
  std::thread leader([&] { EXPECT_TRUE(sync.WaitDurable(first).ok()); });
  first_started.WaitForNotification();
  std::vector<uint64_t> tickets;
  for (int i = 0; i < 7; ++i) tickets.push_back(sync.Written());
  std::vector<std::thread> followers;
  for (uint64_t t : tickets) {
    followers.emplace_back([&sync, t] { EXPECT_TRUE(sync.WaitDurable(t).ok()); });
  }
  release_first.Notify();
  leader.join();
  for (auto& f : followers) f.join();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(sync.syncs(), 2u);
  EXPECT_FALSE(sync.HasUnsynced());
}

TEST(GroupSyncTest, AFailedFsyncFailsTheCommitsItCoveredAndTheNextCommitTriesAgain) {
  bool fail = true;
  GroupSync sync(
      [&] { return fail ? absl::InternalError("rocksdb sync: disk gone") : absl::OkStatus(); });
  uint64_t a = sync.Written();
  absl::Status s = sync.WaitDurable(a);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sync.WaitDurable(a).code(), absl::StatusCode::kInternal);
  fail = false;
  uint64_t b = sync.Written();
  EXPECT_TRUE(sync.WaitDurable(b).ok());
  EXPECT_TRUE(sync.WaitDurable(a).ok());  // covered by b's fsync
}

// Eight threads committing: each write is counted before its ticket is
// taken, the fake fsync records how many writes it covers, and no commit
// returns before a covering fsync.
TEST(GroupSyncTest, NoCommitReturnsBeforeAnFsyncCoveringItsWrite) {
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> durable{0};
  GroupSync sync([&] {
    durable.store(writes.load());
    return absl::OkStatus();
  });
  constexpr int kThreads = 8;
  constexpr int kCommits = 500;
  std::atomic<int> early{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCommits; ++i) {
        uint64_t mine = writes.fetch_add(1) + 1;
        uint64_t ticket = sync.Written();
        ASSERT_TRUE(sync.WaitDurable(ticket).ok());
        // Writes are counted in any order, so check the count covers at
        // least as many writes as had finished when this one did.
        if (durable.load() < mine) early++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(early.load(), 0);
  EXPECT_LE(sync.syncs(), static_cast<uint64_t>(kThreads * kCommits));
  EXPECT_FALSE(sync.HasUnsynced());
}

}  // namespace
}  // namespace unipool
