// DrainTracker and PinSet: the drain bookkeeping and the pin matching the
// directory delegates to (directory_*_test cover them through Directory).
#include "unipool/directory/drain_tracker.h"

#include "gtest/gtest.h"
#include "unipool/directory/pin_set.h"

namespace unipool {
namespace {

TEST(ChooseMoveSourceTest, ReadsTheDrainedCopyWhileItsNodeIsUpElseAnyLiveCopy) {
  std::vector<ObjectCopy> copies = {{1, 100}, {2, 200}, {3, 300}};
  auto up = [](std::initializer_list<NodeId> live) {
    std::vector<NodeId> v(live);
    return [v](NodeId n) { return std::find(v.begin(), v.end(), n) != v.end(); };
  };
  EXPECT_EQ(ChooseMoveSource(copies, 2, up({1, 2, 3})), (ObjectCopy{2, 200}));
  EXPECT_EQ(ChooseMoveSource(copies, 2, up({3})), (ObjectCopy{3, 300}));
  EXPECT_EQ(ChooseMoveSource(copies, 2, up({})), std::nullopt);
}

TEST(DrainTrackerTest, NextSkipsKeysBeingMovedAndQueueFirstComesBackFirst) {
  DrainTracker drains;
  drains.Begin(7, {"a", "b", "c"});
  drains.MoveStarted(7, "b", 42);
  EXPECT_EQ(drains.MovesInFlight(7), 1u);
  EXPECT_EQ(drains.Next(7), "a");
  EXPECT_EQ(drains.Next(7), "c");  // "b" is moving
  EXPECT_EQ(drains.Next(7), std::nullopt);
  drains.QueueFirst(7, "c");
  drains.Queue(7, "d");
  EXPECT_EQ(drains.Next(7), "c");
  EXPECT_EQ(drains.Next(7), "d");
  // A stale move id does not end the current move.
  drains.MoveEnded(7, "b", 41);
  EXPECT_TRUE(drains.IsMoving("b"));
  drains.MoveEnded(7, "b", 42);
  EXPECT_FALSE(drains.IsMoving("b"));
  EXPECT_EQ(drains.MovesInFlight(7), 0u);
  EXPECT_EQ(drains.Next(8), std::nullopt);  // never drained
}

TEST(DrainTrackerTest, RescanOnlyWhenTheQueueIsDryAndCopiesRemainAtMostOncePerSecond) {
  DrainTracker drains;
  drains.Begin(1, {"a"});
  EXPECT_FALSE(drains.RescanDue(1, 5, 0));  // queue not empty
  ASSERT_EQ(drains.Next(1), "a");
  drains.MoveStarted(1, "a", 9);
  EXPECT_FALSE(drains.RescanDue(1, 1, 0));  // the one copy left is moving
  EXPECT_TRUE(drains.RescanDue(1, 2, 0));
  EXPECT_FALSE(drains.RescanDue(1, 2, 999));
  EXPECT_TRUE(drains.RescanDue(1, 2, 1000));
}

TEST(DrainTrackerTest, BlockedReasonIsKeptUntilChangedAndClearedByEndAndBegin) {
  DrainTracker drains;
  EXPECT_TRUE(drains.Blocked(3).ok());
  drains.SetBlocked(3, absl::ResourceExhaustedError("no room"));
  EXPECT_EQ(drains.Blocked(3).code(), absl::StatusCode::kResourceExhausted);
  drains.End(3);
  EXPECT_TRUE(drains.Blocked(3).ok());
  drains.SetBlocked(3, absl::ResourceExhaustedError("no room"));
  drains.Begin(3, {});
  EXPECT_TRUE(drains.Blocked(3).ok());
}

TEST(PinSetTest, KeyPinsMatchExactlyPrefixPinsMatchEveryKeyStartingWithThem) {
  PinSet pins;
  EXPECT_TRUE(pins.Add("model/a", /*prefix=*/false));
  EXPECT_FALSE(pins.Add("model/a", /*prefix=*/false));
  EXPECT_TRUE(pins.Add("kv:", /*prefix=*/true));
  EXPECT_EQ(pins.size(), 2u);
  EXPECT_TRUE(pins.Covers("model/a"));
  EXPECT_FALSE(pins.Covers("model/ab"));
  EXPECT_TRUE(pins.Covers("kv:123"));
  EXPECT_FALSE(pins.Covers("k"));
  EXPECT_TRUE(pins.Has("kv:", true));
  EXPECT_FALSE(pins.Has("kv:", false));
  EXPECT_FALSE(pins.Remove("kv:", false));
  EXPECT_TRUE(pins.Remove("kv:", true));
  EXPECT_FALSE(pins.Covers("kv:123"));
}

}  // namespace
}  // namespace unipool
