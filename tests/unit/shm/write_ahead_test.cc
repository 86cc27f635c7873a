// WriteAhead: work runs in order on its own thread, holds what it keeps
// until it ran, and is dropped (not queued) beyond its byte bound or once
// the queue is being destroyed.
#include "unipool/shm/write_ahead.h"

#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace unipool {
namespace {

// Waits until `ahead` has run `count` pieces of work.
void AwaitDone(const WriteAhead& ahead, uint64_t count) {
  while (ahead.done() < count) absl::SleepFor(absl::Milliseconds(1));
}

TEST(WriteAheadTest, RunsWorkInOrderOnAThreadOfItsOwn) {
  WriteAhead ahead;
  absl::Mutex mu;
  std::vector<int> ran;
  std::vector<std::thread::id> threads;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ahead.Add(4096, nullptr, [&, i] {
      absl::MutexLock lock(&mu);
      ran.push_back(i);
      threads.push_back(std::this_thread::get_id());
    }));
  }
  AwaitDone(ahead, 5);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
  for (const auto& id : threads) EXPECT_NE(id, std::this_thread::get_id());
}

TEST(WriteAheadTest, KeepsItsMappingUntilTheWorkRan) {
  WriteAhead ahead;
  auto mapping = std::make_shared<int>(7);
  std::weak_ptr<int> watched = mapping;
  absl::Notification release;
  int seen = 0;
  ASSERT_TRUE(ahead.Add(4096, mapping, [&, raw = mapping.get()] {
    release.WaitForNotification();
    seen = *raw;  // still alive: the queue holds it
  }));
  mapping.reset();
  EXPECT_FALSE(watched.expired());
  release.Notify();
  AwaitDone(ahead, 1);
  EXPECT_EQ(seen, 7);
}

TEST(WriteAheadTest, DropsWorkBeyondItsByteBound) {
  WriteAhead ahead;
  absl::Notification release;
  // The first piece blocks the thread while it counts against the bound.
  ASSERT_TRUE(ahead.Add(WriteAhead::kMaxQueuedBytes - 4096, nullptr,
                        [&] { release.WaitForNotification(); }));
  EXPECT_TRUE(ahead.Add(4096, nullptr, [] {}));
  bool dropped_ran = false;
  EXPECT_FALSE(ahead.Add(1, nullptr, [&] { dropped_ran = true; }));
  release.Notify();
  AwaitDone(ahead, 2);
  // Done work leaves the bound: the queue takes more again.
  EXPECT_TRUE(ahead.Add(WriteAhead::kMaxQueuedBytes, nullptr, [] {}));
  AwaitDone(ahead, 3);
  EXPECT_FALSE(dropped_ran);
}

TEST(WriteAheadTest, DestructionDropsWhatIsQueuedAndJoins) {
  int later_runs = 0;
  auto dropped = std::make_shared<int>(0);
  std::weak_ptr<int> watched = dropped;
  absl::Notification running;
  {
    WriteAhead ahead;
    // The running piece lasts until the destructor has begun: from then on
    // the queue refuses work (a zero-byte no-op until then).
    ASSERT_TRUE(ahead.Add(4096, nullptr, [&] {
      running.Notify();
      while (ahead.Add(0, nullptr, [] {})) absl::SleepFor(absl::Milliseconds(1));
    }));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(ahead.Add(4096, dropped, [&] { ++later_runs; }));
    dropped.reset();
    running.WaitForNotification();
  }
  EXPECT_EQ(later_runs, 0);
  EXPECT_TRUE(watched.expired());  // the queued pieces were freed with it
}

TEST(WriteAheadTest, StartsNoThreadWithoutWork) {
  WriteAhead ahead;  // destroyed at once: nothing to join, nothing done
  EXPECT_EQ(ahead.done(), 0u);
}

}  // namespace
}  // namespace unipool
