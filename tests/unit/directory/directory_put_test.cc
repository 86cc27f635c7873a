// The Directory's two-phase put over a real RocksDB catalog: reservations,
// commits (alone, in batches and grouped across threads), expiry, aborts,
// removes and the limits on keys and sizes. Time is the fixture's fake
// clock: nothing sleeps.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/common/protocol.h"
#include "unipool/directory/directory.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

using testing::kNodeA;
using testing::kNodeB;
using testing::kNodeC;
using testing::TestNode;
constexpr uint64_t KiB = testing::kKiB;
constexpr uint64_t MiB = testing::kMiB;

using DirectoryPutTest = testing::DirectoryFixture;

// ------------------------------------------------------------ two-phase put

TEST_F(DirectoryPutTest, TwoPhasePut) {
  std::map<NodeId, TestNode> nodes;
  for (const TestNode& n : {kNodeA, kNodeB, kNodeC}) nodes[MustRegister(n)] = n;

  auto reservation = Start("page-1", 5000);
  ASSERT_TRUE(reservation.ok()) << reservation.status();
  const ObjectInfo& where = reservation->location;
  ASSERT_EQ(nodes.count(where.copies[0].node_id), 1u)
      << "placed on unknown node " << where.copies[0].node_id;
  const TestNode& node = nodes[where.copies[0].node_id];
  EXPECT_TRUE(where.copies[0].node_up);
  EXPECT_EQ(where.copies[0].node_address, AddressOf(node.name));
  EXPECT_EQ(where.copies[0].offset % kAllocationAlignment, 0u);
  EXPECT_LE(where.copies[0].offset + where.length, node.slab_size);
  EXPECT_EQ(where.length, 5000u);
  EXPECT_GT(where.version, 0u);
  EXPECT_GT(reservation->put_id, 0u);

  // Reserved, not visible.
  EXPECT_EQ(Find("page-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(Exists("page-1"));
  EXPECT_EQ(directory_->Status().pending_puts, 1u);
  EXPECT_EQ(Used(), RoundUpToAllocation(5000));  // 5000 bytes take two 4 KiB units
  EXPECT_EQ(UsedOn(where.copies[0].node_id), RoundUpToAllocation(5000));

  ASSERT_TRUE(Commit(reservation->put_id, 0x1234abcd).ok());
  auto found = Find("page-1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->copies[0].node_id, where.copies[0].node_id);
  EXPECT_EQ(found->copies[0].node_address, where.copies[0].node_address);
  EXPECT_TRUE(found->copies[0].node_up);
  EXPECT_EQ(found->copies[0].offset, where.copies[0].offset);
  EXPECT_EQ(found->length, 5000u);
  EXPECT_EQ(found->version, where.version);
  EXPECT_EQ(found->checksum, 0x1234abcdu);
  EXPECT_TRUE(Exists("page-1"));

  PoolState status = directory_->Status();
  EXPECT_EQ(status.objects, 1u);
  EXPECT_EQ(status.pending_puts, 0u);
  EXPECT_EQ(status.used, RoundUpToAllocation(5000));
  EXPECT_EQ(NodeStatusOf(where.copies[0].node_id)->objects, 1u);

  // A committed put cannot be committed twice.
  EXPECT_EQ(Commit(reservation->put_id, 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Find("page-1")->checksum, 0x1234abcdu);
  EXPECT_EQ(Commit(987654321, 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(DirectoryPutTest, PlacementsOfABatchAreDisjointAndSpread) {
  std::map<NodeId, TestNode> nodes;
  for (const TestNode& n : {kNodeA, kNodeB, kNodeC}) nodes[MustRegister(n)] = n;
  std::vector<std::string> keys;
  std::vector<PutRequest> requests;
  for (int i = 0; i < 96; ++i) keys.push_back("k" + std::to_string(i));
  for (int i = 0; i < 96; ++i) requests.push_back({keys[i], (i % 7 + 1) * 256 * KiB, false});
  auto results = directory_->PutStart(requests);
  ASSERT_EQ(results.size(), requests.size());
  std::map<NodeId, std::map<uint64_t, uint64_t>> ranges;
  std::set<uint64_t> put_ids;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << keys[i] << ": " << results[i].status();
    const ObjectInfo& where = results[i]->location;
    ASSERT_EQ(nodes.count(where.copies[0].node_id), 1u);
    EXPECT_LE(where.copies[0].offset + where.length, nodes[where.copies[0].node_id].slab_size);
    EXPECT_TRUE(put_ids.insert(results[i]->put_id).second) << "duplicate put id";
    auto& on_node = ranges[where.copies[0].node_id];
    auto next = on_node.lower_bound(where.copies[0].offset);
    if (next != on_node.end()) {
      EXPECT_LE(where.copies[0].offset + where.length, next->first);
    }
    if (next != on_node.begin()) {
      auto prev = std::prev(next);
      EXPECT_LE(prev->first + prev->second, where.copies[0].offset);
    }
    on_node[where.copies[0].offset] = where.length;
  }
  // Free-space aware placement uses every node.
  EXPECT_EQ(ranges.size(), 3u);
  // Versions increase within a batch.
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_GT(results[i]->location.version, results[i - 1]->location.version);
  }
}

TEST_F(DirectoryPutTest, ExistingKeyIsAlreadyExistsUnlessReplaced) {
  MustRegister(kNodeA);
  MustRegister(kNodeB);
  uint64_t v1 = Put("tensor", 1 * MiB, 111);
  auto first = Find("tensor");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Used(), 1 * MiB);

  EXPECT_EQ(Start("tensor", 2 * MiB).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Used(), 1 * MiB);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);

  auto replacement = Start("tensor", 2 * MiB, /*replace=*/true);
  ASSERT_TRUE(replacement.ok()) << replacement.status();
  EXPECT_EQ(Used(), 3 * MiB);  // both until the commit
  // The old object stays visible until the commit.
  EXPECT_EQ(Find("tensor")->version, v1);
  ASSERT_TRUE(Commit(replacement->put_id, 222).ok());

  auto second = Find("tensor");
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second->version, v1);
  EXPECT_EQ(second->version, replacement->location.version);
  EXPECT_EQ(second->checksum, 222u);
  EXPECT_EQ(second->length, 2 * MiB);
  EXPECT_EQ(second->copies[0].offset, replacement->location.copies[0].offset);
  // The old object's space is free again.
  EXPECT_EQ(Used(), 2 * MiB);
  PoolState status = directory_->Status();
  EXPECT_EQ(status.objects, 1u);
  uint64_t node_objects = 0;
  for (const NodeState& n : status.nodes) node_objects += n.objects;
  EXPECT_EQ(node_objects, 1u);
}

TEST_F(DirectoryPutTest, ReplaceTwiceInOneCommitBatchKeepsTheLast) {
  MustRegister(kNodeA);
  Put("k", 64 * KiB, 1);
  auto r1 = Start("k", 128 * KiB, true);
  auto r2 = Start("k", 256 * KiB, true);
  ASSERT_TRUE(r1.ok() && r2.ok());
  std::vector<CommitRequest> commits = {{r1->put_id, 2}, {r2->put_id, 3}};
  auto results = directory_->PutCommit(commits);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_TRUE(results[1].ok()) << results[1];
  auto found = Find("k");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->version, r2->location.version);
  EXPECT_EQ(found->checksum, 3u);
  EXPECT_EQ(Used(), 256 * KiB);
  EXPECT_EQ(directory_->Status().nodes.at(0).objects, 1u);
  // And so after a restart.
  ASSERT_TRUE(Reopen().ok());
  MustRegister(kNodeA);  // readable once its node is back
  EXPECT_EQ(Find("k")->version, r2->location.version);
  EXPECT_EQ(Used(), 256 * KiB);
}

TEST_F(DirectoryPutTest, TwoPendingPutsOfOneKeyFirstCommitWins) {
  MustRegister(kNodeA);
  MustRegister(kNodeB);
  auto first = Start("same", 64 * KiB);
  auto second = Start("same", 64 * KiB);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->put_id, second->put_id);
  EXPECT_EQ(Used(), 128 * KiB);

  // Committed in the opposite order of their starts: the first commit wins.
  ASSERT_TRUE(Commit(second->put_id, 2).ok());
  EXPECT_EQ(Commit(first->put_id, 1).code(), absl::StatusCode::kAlreadyExists);
  auto found = Find("same");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->version, second->location.version);
  EXPECT_EQ(found->checksum, 2u);
  // The loser's reservation is released, and is gone.
  EXPECT_EQ(Used(), 64 * KiB);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(Commit(first->put_id, 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(DirectoryPutTest, TwoPendingPutsOfOneKeyInOneCommitBatch) {
  MustRegister(kNodeA);
  std::vector<PutRequest> starts = {{"dup", 4 * KiB, false}, {"dup", 8 * KiB, false}};
  auto reservations = directory_->PutStart(starts);
  ASSERT_TRUE(reservations[0].ok() && reservations[1].ok());
  std::vector<CommitRequest> commits = {{reservations[0]->put_id, 10},
                                        {reservations[1]->put_id, 20}};
  auto results = directory_->PutCommit(commits);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Find("dup")->checksum, 10u);
  EXPECT_EQ(Used(), RoundUpToAllocation(4 * KiB));
}

// ------------------------------------------------------------ expiry, abort, remove

TEST_F(DirectoryPutTest, ExpiredReservationIsReclaimedByTick) {
  NodeId a = MustRegister(kNodeA);
  auto reservation = Start("slow", 3 * MiB);
  ASSERT_TRUE(reservation.ok());
  EXPECT_EQ(Used(), 3 * MiB);

  Advance(kPutTimeout - absl::Seconds(1));
  EXPECT_TRUE(directory_->Heartbeat(a, kNodeA.slab_id, {}).ok());
  directory_->Tick();
  EXPECT_EQ(directory_->Status().pending_puts, 1u) << "reclaimed before its deadline";
  EXPECT_EQ(Used(), 3 * MiB);

  Advance(absl::Seconds(2));
  EXPECT_TRUE(directory_->Heartbeat(a, kNodeA.slab_id, {}).ok());
  directory_->Tick();
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(Used(), 0u);
  EXPECT_EQ(Commit(reservation->put_id, 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Find("slow").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Used(), 0u);
  // The whole slab is usable again.
  EXPECT_TRUE(Start("big", kNodeA.slab_size).ok());
}

TEST_F(DirectoryPutTest, CommitAfterTheDeadlineIsNotFoundEvenWithoutTick) {
  MustRegister(kNodeA);
  auto late = Start("late", 1 * MiB);
  auto timely = Start("timely", 1 * MiB);
  ASSERT_TRUE(late.ok() && timely.ok());
  Advance(kPutTimeout - absl::Milliseconds(1));
  EXPECT_TRUE(Commit(timely->put_id, 1).ok());
  Advance(absl::Milliseconds(2));
  EXPECT_EQ(Commit(late->put_id, 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Find("late").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(Used(), 1 * MiB);  // only "timely"
}

TEST_F(DirectoryPutTest, PutAbortFrees) {
  MustRegister(kNodeA);
  auto r1 = Start("a1", 1 * MiB);
  auto r2 = Start("a2", 2 * MiB);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(Used(), 3 * MiB);
  // Unknown and repeated ids are harmless.
  std::vector<uint64_t> ids = {r1->put_id, 999999, r1->put_id};
  directory_->PutAbort(ids);
  EXPECT_EQ(Used(), 2 * MiB);
  EXPECT_EQ(directory_->Status().pending_puts, 1u);
  EXPECT_EQ(Commit(r1->put_id, 1).code(), absl::StatusCode::kNotFound);
  Abort(r2->put_id);
  EXPECT_EQ(Used(), 0u);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  directory_->PutAbort({});
  // Aborting a committed put does not touch the object.
  uint64_t v = Put("kept", 4 * KiB, 5);
  Abort(v);
  EXPECT_TRUE(Find("kept").ok());
  EXPECT_EQ(Used(), RoundUpToAllocation(4 * KiB));
}

TEST_F(DirectoryPutTest, RemoveFreesAndHidesTheObject) {
  MustRegister(kNodeA);
  Put("gone", 2 * MiB, 1);
  Put("stays", 1 * MiB, 2);
  EXPECT_EQ(Used(), 3 * MiB);
  EXPECT_TRUE(Remove("gone").ok());
  EXPECT_EQ(Find("gone").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(Exists("gone"));
  EXPECT_TRUE(Find("stays").ok());
  EXPECT_EQ(Used(), 1 * MiB);
  EXPECT_EQ(directory_->Status().objects, 1u);
  EXPECT_EQ(directory_->Status().nodes.at(0).objects, 1u);
  EXPECT_EQ(Remove("gone").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Remove("never").code(), absl::StatusCode::kNotFound);
  // The key can be put again, without replace.
  EXPECT_TRUE(Start("gone", 4 * KiB).ok());
}

TEST_F(DirectoryPutTest, BatchesWithDuplicatesAreHandled) {
  MustRegister(kNodeA);
  auto r = Start("x", 64 * KiB);
  ASSERT_TRUE(r.ok());
  // The same put id twice in one commit batch: committed once.
  std::vector<CommitRequest> commits = {{r->put_id, 7}, {r->put_id, 8}};
  auto committed = directory_->PutCommit(commits);
  ASSERT_EQ(committed.size(), 2u);
  EXPECT_TRUE(committed[0].ok()) << committed[0];
  EXPECT_EQ(committed[1].code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Find("x")->checksum, 7u);
  EXPECT_EQ(Used(), 64 * KiB);
  EXPECT_EQ(directory_->Status().nodes.at(0).objects, 1u);

  // Lookup / Exists of repeated keys answer each item.
  std::vector<std::string_view> keys = {"x", "missing", "x"};
  auto found = directory_->Lookup(keys);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_TRUE(found[0].ok());
  EXPECT_EQ(found[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(found[2].ok());
  EXPECT_EQ(directory_->Exists(keys), (std::vector<bool>{true, false, true}));

  // The same key twice in one remove batch: removed once, freed once.
  Put("y", 64 * KiB, 9);
  std::vector<std::string_view> removes = {"x", "x", "y", "missing"};
  auto removed = directory_->Remove(removes);
  ASSERT_EQ(removed.size(), 4u);
  EXPECT_TRUE(removed[0].ok());
  EXPECT_EQ(removed[1].code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(removed[2].ok());
  EXPECT_EQ(removed[3].code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Used(), 0u);
  EXPECT_EQ(directory_->Status().objects, 0u);
  EXPECT_EQ(directory_->Status().nodes.at(0).objects, 0u);
  EXPECT_EQ(directory_->Status().nodes.at(0).largest_free, kNodeA.slab_size);

  // Empty batches.
  EXPECT_TRUE(directory_->PutStart({}).empty());
  EXPECT_TRUE(directory_->PutCommit({}).empty());
  EXPECT_TRUE(directory_->Remove({}).empty());
  EXPECT_TRUE(directory_->Lookup({}).empty());
}

// ------------------------------------------------------------ limits

TEST_F(DirectoryPutTest, PoolFullIsResourceExhausted) {
  TestNode small_a{"small-a", 1, 1 * MiB};
  TestNode small_b{"small-b", 2, 1 * MiB};
  MustRegister(small_a);
  MustRegister(small_b);
  // 2 MiB free in total, but no single node has it.
  EXPECT_EQ(Start("too-big", 1 * MiB + 1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Used(), 0u);
  uint64_t v1 = Put("fill-1", 1 * MiB, 1);
  Put("fill-2", 1 * MiB, 2);
  EXPECT_EQ(Used(), 2 * MiB);
  // A put that finds no room evicts; only pinned (or leased) objects make
  // the pool full.
  ASSERT_TRUE(directory_->Pin("fill-", /*prefix=*/true).ok());
  EXPECT_EQ(Start("one-more", 1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  // A batch: each item gets its own answer.
  std::vector<PutRequest> batch = {{"p", 4 * KiB, false}, {"fill-1", 4 * KiB, false}};
  auto results = directory_->PutStart(batch);
  EXPECT_EQ(results[0].status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kAlreadyExists);
  // Room again after a remove.
  ASSERT_TRUE(Remove("fill-1").ok());
  auto r = Start("one-more", 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->location.version, v1);
}

TEST_F(DirectoryPutTest, BadKeysAndLengthsAreInvalidArgument) {
  MustRegister(kNodeA);
  const std::string max_key(kMaxKeyBytes, 'k');
  const std::string long_key(kMaxKeyBytes + 1, 'k');
  std::vector<PutRequest> batch = {
      {"", 4 * KiB, false},      {long_key, 4 * KiB, false},
      {"zero", 0, false},        {"huge", kMaxObjectBytes + 1, false},
      {max_key, 4 * KiB, false}, {"ok", 1, false},
  };
  auto results = directory_->PutStart(batch);
  ASSERT_EQ(results.size(), batch.size());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(results[i].status().code(), absl::StatusCode::kInvalidArgument) << "item " << i;
  }
  EXPECT_TRUE(results[4].ok()) << results[4].status();
  EXPECT_TRUE(results[5].ok()) << results[5].status();
  EXPECT_EQ(directory_->Status().pending_puts, 2u);
  EXPECT_EQ(Used(), 2 * kAllocationAlignment);
  // Bad keys are simply not found elsewhere.
  EXPECT_EQ(Find("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Remove(long_key).code(), absl::StatusCode::kNotFound);
}

// ------------------------------------------------------------ threads

// The directory is documented thread-safe: concurrent writers on disjoint
// keys, readers, Status and Tick must leave exact accounting behind.
TEST_F(DirectoryPutTest, ConcurrentClientsKeepExactAccounting) {
  MustRegister(kNodeA);
  MustRegister(kNodeB);
  constexpr int kThreads = 4;
  constexpr int kRounds = 150;
  std::vector<uint64_t> bytes_left(kThreads, 0);
  std::vector<uint64_t> objects_left(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::vector<std::string> keys;
        std::vector<PutRequest> requests;
        for (int i = 0; i < 4; ++i) {
          keys.push_back("t" + std::to_string(t) + "-" + std::to_string(round) + "-" +
                         std::to_string(i));
        }
        for (int i = 0; i < 4; ++i) {
          requests.push_back({keys[i], static_cast<uint64_t>((i + 1) * 16 * KiB + t), false});
        }
        auto reservations = directory_->PutStart(requests);
        std::vector<CommitRequest> commits;
        for (auto& r : reservations) {
          ASSERT_TRUE(r.ok()) << r.status();
          commits.push_back({r->put_id, r->location.version * 3});
        }
        for (const absl::Status& s : directory_->PutCommit(commits)) ASSERT_TRUE(s.ok()) << s;
        std::vector<std::string_view> views(keys.begin(), keys.end());
        auto found = directory_->Lookup(views);
        for (size_t i = 0; i < found.size(); ++i) {
          ASSERT_TRUE(found[i].ok()) << keys[i];
          EXPECT_EQ(found[i]->checksum, found[i]->version * 3);
        }
        // Remove the first two, keep the others.
        std::vector<std::string_view> removes = {views[0], views[1]};
        for (const absl::Status& s : directory_->Remove(removes)) ASSERT_TRUE(s.ok()) << s;
        bytes_left[t] +=
            RoundUpToAllocation(requests[2].length) + RoundUpToAllocation(requests[3].length);
        objects_left[t] += 2;
      }
    });
  }
  std::thread observer([&] {
    for (int i = 0; i < 200; ++i) {
      PoolState status = directory_->Status();
      EXPECT_LE(status.used, status.capacity);
      directory_->Tick();
    }
  });
  for (auto& thread : threads) thread.join();
  observer.join();
  uint64_t bytes = 0, objects = 0;
  for (int t = 0; t < kThreads; ++t) {
    bytes += bytes_left[t];
    objects += objects_left[t];
  }
  PoolState status = directory_->Status();
  EXPECT_EQ(status.used, bytes);
  EXPECT_EQ(status.objects, objects);
  EXPECT_EQ(status.pending_puts, 0u);
  EXPECT_EQ(status.nodes.at(0).objects + status.nodes.at(1).objects, objects);
}

// Commits from many threads at once run as groups (one catalog write per
// group, written without the map's mutex): each is acknowledged once, every
// replace of one shared key lands in the log in the order the map applied
// it, and a reopened catalog holds exactly what the map held.
TEST_F(DirectoryPutTest, ConcurrentCommitsAreGroupedAndTheCatalogMatchesTheMap) {
  ASSERT_TRUE(Reopen(/*sync=*/true).ok());
  MustRegister(kNodeA);
  MustRegister(kNodeB);
  constexpr int kThreads = 8;
  constexpr int kRounds = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::string own = "g" + std::to_string(t) + "-" + std::to_string(round);
        std::vector<PutRequest> requests = {{own, 4 * KiB, false}, {"shared", 8 * KiB, true}};
        auto reservations = directory_->PutStart(requests);
        std::vector<CommitRequest> commits;
        for (auto& r : reservations) {
          ASSERT_TRUE(r.ok()) << r.status();
          commits.push_back({r->put_id, r->location.version * 7});
        }
        for (const absl::Status& s : directory_->PutCommit(commits)) ASSERT_TRUE(s.ok()) << s;
        std::string_view lookup_key = own;
        ASSERT_TRUE(directory_->Lookup({&lookup_key, 1}).at(0).ok()) << own;
      }
    });
  }
  // Lookups run beside the groups (they never take the gate).
  std::thread reader([&] {
    std::string_view shared = "shared";
    for (int i = 0; i < 500; ++i) {
      auto found = directory_->Lookup({&shared, 1}).at(0);
      if (found.ok()) {
        EXPECT_EQ(found->checksum, found->version * 7);
      }
    }
  });
  for (auto& thread : threads) thread.join();
  reader.join();
  Directory::CommitCounts counts = directory_->commit_counts();
  EXPECT_EQ(counts.calls, static_cast<uint64_t>(kThreads * kRounds));
  EXPECT_GE(counts.writes, 1u);
  EXPECT_LE(counts.writes, counts.calls);
  absl::StatusOr<ObjectInfo> last = Find("shared");
  ASSERT_TRUE(last.ok()) << last.status();
  PoolState before = directory_->Status();
  EXPECT_EQ(before.objects, static_cast<uint64_t>(kThreads * kRounds + 1));
  EXPECT_EQ(before.pending_puts, 0u);

  ASSERT_TRUE(Reopen(/*sync=*/true).ok());
  MustRegister(kNodeA);
  MustRegister(kNodeB);
  absl::StatusOr<ObjectInfo> reopened = Find("shared");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(reopened->version, last->version);
  EXPECT_EQ(reopened->checksum, last->checksum);
  PoolState after = directory_->Status();
  EXPECT_EQ(after.objects, before.objects);
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.pending_puts, 0u);
}

}  // namespace
}  // namespace unipool
