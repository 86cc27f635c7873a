// The held-space rule (held_space.h): in a pool with a key, no range is
// reused while a capability the directory issued for it still works. Over a
// real RocksDB catalog with the fixture's fake clock.
#include "unipool/directory/held_space.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "unipool/common/auth.h"
#include "unipool/common/capability.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

using testing::kMiB;
constexpr absl::Duration kLifetime = absl::Seconds(10);

class HeldSpaceTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    auto cluster_key = NewClusterKey();
    ASSERT_TRUE(cluster_key.ok());
    auto key = CapabilityKey::FromCredential(*cluster_key);
    ASSERT_TRUE(key.ok()) << key.status();
    options.capabilities = *key;
    options.read_capability_lifetime = kLifetime;
    options.lease = absl::Seconds(4);       // shorter than the capabilities
    options.node_timeout = absl::Hours(1);  // the node stays up without beats
  }
  void SetUp() override {
    DirectoryFixture::SetUp();
    MustRegister({"n1", 1, 64 * kMiB});
  }
  // Used bytes once the tick has reclaimed what is no longer held.
  uint64_t UsedAfterTick() {
    directory_->Tick();
    return Used();
  }
};

TEST_F(HeldSpaceTest, ALookedUpObjectIsHeldUntilItsReadCapabilitiesExpire) {
  Put("a/x", kMiB, 1);
  Advance(kPutTimeout + kCapabilityClockSkew);  // its write capabilities are over
  auto found = Find("a/x");
  ASSERT_TRUE(found.ok());
  const int64_t expires = found->copies.at(0).capability.expires_unix_ms;
  EXPECT_EQ(expires, absl::ToUnixMillis(now_ + kLifetime));
  EXPECT_LE(found->lease, kLifetime);  // the client's cache trusts no longer
  ASSERT_TRUE(Remove("a/x").ok());
  Advance(kLifetime + kCapabilityClockSkew - absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB)) << "reused while the capability works";
  Advance(absl::Milliseconds(2));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnAbortedReservationIsHeldUntilItsWriteCapabilitiesEnd) {
  auto reservation = Start("a/y", kMiB);
  ASSERT_TRUE(reservation.ok());
  const int64_t write_until = reservation->location.copies.at(0).capability.expires_unix_ms;
  Abort(reservation->put_id);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  now_ = absl::FromUnixMillis(write_until) + kCapabilityClockSkew;
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnObjectRemovedRightAfterItsPutIsHeldForItsWriter) {
  Put("a/z", kMiB, 1);
  ASSERT_TRUE(Remove("a/z").ok());
  Advance(kPutTimeout);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(kCapabilityClockSkew + absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnExpiredReservationIsHeldForTheClockSkew) {
  ASSERT_TRUE(Start("a/w", kMiB).ok());
  Advance(kPutTimeout + absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  Advance(kCapabilityClockSkew);
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnObjectEvictedRightAfterItsPutIsHeldForItsWriter) {
  Put("a/e", kMiB, 1);
  Advance(absl::Seconds(5));  // past any lease, within the put's capabilities
  auto evicted = directory_->Evict("a/");
  ASSERT_TRUE(evicted.ok()) << evicted.status();
  EXPECT_EQ(*evicted, 1u);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB)) << "reused while its writer may write";
  Advance(kPutTimeout + kCapabilityClockSkew);
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, OnceTheNodesRevokedItsWriteCapabilitiesAnEvictedObjectIsFreedAtOnce) {
  auto reservation = Start("a/r", kMiB);
  ASSERT_TRUE(reservation.ok());
  ASSERT_TRUE(Commit(reservation->put_id, 1).ok());
  // The commit queued the very capability the reservation handed out.
  std::vector<RevokePlan> plans = directory_->revocations().Take(16, absl::ZeroDuration());
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].key, "a/r");
  ASSERT_EQ(plans[0].on_nodes.size(), 1u);
  EXPECT_EQ(plans[0].on_nodes[0].capability.mac, reservation->location.copies.at(0).capability.mac);
  // A node that did not revoke it keeps the memory held; one that did frees it.
  directory_->FinishRevocations(plans, {false});
  Advance(absl::Seconds(5));
  ASSERT_TRUE(directory_->Evict("a/").ok());
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(kPutTimeout + kCapabilityClockSkew);
  EXPECT_EQ(UsedAfterTick(), 0u);

  reservation = Start("a/s", kMiB);
  ASSERT_TRUE(reservation.ok());
  ASSERT_TRUE(Commit(reservation->put_id, 1).ok());
  plans = directory_->revocations().Take(16, absl::ZeroDuration());
  ASSERT_EQ(plans.size(), 1u);
  directory_->FinishRevocations(plans, {true});
  Advance(absl::Seconds(5));
  auto evicted = directory_->Evict("a/");
  ASSERT_TRUE(evicted.ok()) << evicted.status();
  EXPECT_EQ(*evicted, 1u);
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnAbortedPutsWriteCapabilitiesAreQueuedForRevocation) {
  auto reservation = Start("a/t", kMiB);
  ASSERT_TRUE(reservation.ok());
  Abort(reservation->put_id);
  std::vector<RevokePlan> plans = directory_->revocations().Take(16, absl::ZeroDuration());
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].key, "");  // no object to release early: held all the same
  ASSERT_EQ(plans[0].on_nodes.size(), 1u);
  EXPECT_EQ(plans[0].on_nodes[0].capability.mac, reservation->location.copies.at(0).capability.mac);
}

TEST_F(HeldSpaceTest, ARestartHoldsEveryObjectForAPutTimeout) {
  Put("a/v", kMiB, 1);
  ASSERT_TRUE(Reopen().ok());
  MustRegister({"n1", 1, 64 * kMiB});
  ASSERT_TRUE(Remove("a/v").ok());
  Advance(kPutTimeout);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(kCapabilityClockSkew + absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

// The parts themselves, below the Directory.

TEST(HoldRuleTest, AKeyedPoolHoldsForTheCapabilitiesAndAnOpenOneForTheLease) {
  DirectoryOptions open;
  open.lease = absl::Seconds(4);
  open.read_capability_lifetime = kLifetime;
  EXPECT_EQ(HoldRule(open).AfterLookup(), absl::Seconds(4));
  EXPECT_EQ(HoldRule(open).AfterReserve(), absl::ZeroDuration());
  EXPECT_EQ(HoldRule(open).WriteCapabilityEnd(1000), 0);

  DirectoryOptions keyed = open;
  auto cluster_key = NewClusterKey();
  ASSERT_TRUE(cluster_key.ok());
  keyed.capabilities = *CapabilityKey::FromCredential(*cluster_key);
  HoldRule rule(keyed);
  EXPECT_EQ(rule.AfterLookup(), kLifetime + kCapabilityClockSkew);
  EXPECT_EQ(rule.AfterReserve(), keyed.put_timeout + kCapabilityClockSkew);
  EXPECT_EQ(rule.WriteCapabilityEnd(1000), 1000 + absl::ToInt64Milliseconds(kCapabilityClockSkew));
  keyed.lease = absl::Minutes(5);  // a lease longer than the capabilities wins
  EXPECT_EQ(HoldRule(keyed).AfterLookup(), absl::Minutes(5));
}

TEST(HeldSpacePartTest, HeldBytesCountOnTheNodeUntilReleasedOrAdopted) {
  NodeRegistry nodes;
  NodeEntry& node = nodes.Add(64 * kMiB, absl::Now());
  NodeId id = node.record.node_id;
  HeldSpace held;
  uint64_t a = *node.allocator.Allocate(kMiB);
  uint64_t b = *node.allocator.Allocate(kMiB);
  held.Add({1, id, a, kMiB, 100}, nodes);
  held.Add({2, id, b, kMiB, 200}, nodes);
  EXPECT_EQ(node.held_bytes, 2 * kMiB);
  EXPECT_EQ(held.ExpiredBy(150), std::vector<uint64_t>{1});

  held.Release(1, nodes);  // freed: the range can be allocated again
  EXPECT_EQ(node.held_bytes, kMiB);
  EXPECT_EQ(*node.allocator.Allocate(kMiB), a);
  held.Release(1, nodes);  // unknown now: ignored
  EXPECT_EQ(node.held_bytes, kMiB);

  std::optional<HeldExtent> adopted = held.Adopt(2, nodes);  // kept allocated
  ASSERT_TRUE(adopted.has_value());
  EXPECT_EQ(adopted->offset, b);
  EXPECT_EQ(node.held_bytes, 0u);
  EXPECT_EQ(held.Find(2), nullptr);
  EXPECT_FALSE(held.Adopt(2, nodes).has_value());
}

TEST(HeldSpacePartTest, ANodeThatLostItsSlabLosesItsHeldExtents) {
  NodeRegistry nodes;
  NodeId first = nodes.Add(64 * kMiB, absl::Now()).record.node_id;
  NodeId second = nodes.Add(64 * kMiB, absl::Now()).record.node_id;
  HeldSpace held;
  held.Add({1, first, 0, kMiB, 100}, nodes);
  held.Add({2, second, 0, kMiB, 100}, nodes);
  held.Add({3, first, kMiB, kMiB, 100}, nodes);
  std::vector<uint64_t> dropped = held.DropNode(first);
  std::sort(dropped.begin(), dropped.end());
  EXPECT_EQ(dropped, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(held.size(), 1u);
  EXPECT_NE(held.Find(2), nullptr);
}

}  // namespace
}  // namespace unipool
