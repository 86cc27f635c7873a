// Placement: eligible nodes, the roomiest fit, the coldest victim, and the
// watermark sweeps with their retry delay.
#include "unipool/directory/placement.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/common/units.h"

namespace unipool {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
constexpr uint64_t kUnit = kAllocationAlignment;
constexpr uint64_t kSlab = 10 * kUnit;

class PlacementTest : public ::testing::Test {
 protected:
  NodeEntry& AddNode(uint64_t slab = kSlab) {
    NodeEntry& node = nodes_.Add(slab, kNow);
    node.record.name = "n" + std::to_string(node.record.node_id);
    node.health.Registered(kNow);
    return node;
  }
  // An object of `units` allocation units on `node`, used at `used_ms`.
  ObjectEntry& Put(const std::string& key, NodeEntry& node, uint64_t units, int64_t used_ms) {
    ObjectRecord record;
    record.length = units * kUnit;
    record.copies = {{node.record.node_id, *node.allocator.Allocate(record.length)}};
    return objects_.Insert(key, record, /*pinned=*/false, used_ms);
  }

  NodeRegistry nodes_;
  ObjectTable objects_;
};

TEST_F(PlacementTest, TooFewLiveNodesIsUnavailableAndTooSmallSlabsAreExhausted) {
  NodeEntry& a = AddNode();
  NodeEntry& b = AddNode();
  b.record.draining = true;
  EXPECT_EQ(Placement::EligibleNodes(nodes_, "k", kUnit, 2, {}).status().code(),
            absl::StatusCode::kUnavailable);
  NodeId exclude[] = {a.record.node_id};
  EXPECT_EQ(Placement::EligibleNodes(nodes_, "k", kUnit, 1, exclude).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Placement::EligibleNodes(nodes_, "k", 2 * kSlab, 1, {}).status().code(),
            absl::StatusCode::kResourceExhausted);
  auto eligible = Placement::EligibleNodes(nodes_, "k", kUnit, 1, {});
  ASSERT_TRUE(eligible.ok());
  EXPECT_EQ(*eligible, std::vector<NodeEntry*>{&a});
}

TEST_F(PlacementTest, CopiesGoToTheRoomiestNodesAndNeedRoomOnEach) {
  NodeEntry& a = AddNode();
  NodeEntry& b = AddNode();
  NodeEntry& c = AddNode();
  Put("on-a", a, 6, 1);
  Put("on-b", b, 2, 2);
  std::vector<NodeEntry*> eligible = {&a, &b, &c};
  EXPECT_EQ(Placement::Fit(eligible, kUnit, 2), (std::vector<NodeEntry*>{&c, &b}));
  EXPECT_TRUE(Placement::Fit(eligible, 5 * kUnit, 3).empty());  // a has 4 units left
}

TEST_F(PlacementTest, TheVictimIsTheColdestUnleasedObjectOnANodeWithoutRoom) {
  NodeEntry& a = AddNode();
  NodeEntry& b = AddNode();
  ObjectEntry& coldest = Put("coldest", a, 4, 1);
  Put("cold-on-roomy-b", b, 1, 2);
  Put("warm", a, 6, 3);
  std::vector<NodeEntry*> eligible = {&a, &b};
  const int64_t now_ms = 10;
  EXPECT_EQ(Placement::ColdestVictim(objects_, nodes_, eligible, 2 * kUnit, now_ms), &coldest);
  coldest.set_lease_until_unix_ms(now_ms + 1);  // leased: the next one goes
  EXPECT_EQ(Placement::ColdestVictim(objects_, nodes_, eligible, 2 * kUnit, now_ms)->key(), "warm");
}

TEST_F(PlacementTest, ANodeOverItsHighWatermarkComesDownToItsLowOne) {
  Placement placement(0.9, 0.5);
  NodeEntry& a = AddNode();
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), a, 1, i);
  std::optional<Victims> victims = placement.NodeVictims(objects_, a, 100, 1000);
  ASSERT_TRUE(victims.has_value());
  EXPECT_TRUE(victims->enough);
  EXPECT_EQ(victims->keys, (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4"}));
  EXPECT_EQ(victims->bytes, 5 * kUnit);
  // The budget bounds a sweep; one that falls short waits kRetryMs.
  std::optional<Victims> short_of = placement.NodeVictims(objects_, a, 100, 2);
  ASSERT_TRUE(short_of.has_value());
  EXPECT_FALSE(short_of->enough);
  EXPECT_FALSE(placement.NodeVictims(objects_, a, 100 + Placement::kRetryMs - 1, 1000));
  EXPECT_TRUE(placement.NodeVictims(objects_, a, 100 + Placement::kRetryMs, 1000));
}

TEST_F(PlacementTest, ThePoolIsSweptAsAWholeAndLeasedObjectsStay) {
  Placement placement(0.9, 0.8);
  NodeEntry& a = AddNode();
  NodeEntry& b = AddNode();
  for (int i = 0; i < 10; ++i) Put("a" + std::to_string(i), a, 1, i);
  for (int i = 0; i < 9; ++i) Put("b" + std::to_string(i), b, 1, 10 + i);
  EXPECT_FALSE(placement.NodeVictims(objects_, b, 100, 1000).has_value());  // b is at 0.9
  objects_.find("a0")->second.set_lease_until_unix_ms(1000);
  std::optional<Victims> victims = placement.PoolVictims(objects_, nodes_, 100, 1000);
  ASSERT_TRUE(victims.has_value());
  EXPECT_TRUE(victims->enough);
  // 19 of 20 units used, 16 allowed: the three coldest unleased go.
  EXPECT_EQ(victims->keys, (std::vector<std::string>{"a1", "a2", "a3"}));
}

}  // namespace
}  // namespace unipool
