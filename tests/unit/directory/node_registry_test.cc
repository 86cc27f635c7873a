// NodeRegistry: admission (bounds, pool, identity, the node cap), ids,
// capacity and the restart wait; HeartbeatTimes.
#include "unipool/directory/node_registry.h"

#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace unipool {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

NodeRegistration Registration(std::string name, std::string identity = "") {
  NodeRegistration reg;
  reg.name = std::move(name);
  reg.data_address = "127.0.0.1:7400";
  reg.slab_size = 64ull << 20;
  reg.slab_id = 1;
  reg.identity = std::move(identity);
  return reg;
}

NodeEntry& AddUp(NodeRegistry& nodes, const NodeRegistration& reg) {
  NodeEntry& node = nodes.Add(reg.slab_size, kNow);
  node.record.name = reg.name;
  node.record.data_address = "host-" + reg.name + ":7400";
  node.record.identity_digest = NodeIdentityDigest(reg.identity);
  node.health.Registered(kNow);
  node.registered_since_start = true;
  return node;
}

TEST(NodeRegistryTest, RegistrationsOutsideTheRecordBoundsAreRefusedNamingTheField) {
  EXPECT_TRUE(ValidateRegistration(Registration("a")).ok());
  NodeRegistration unnamed = Registration("");
  EXPECT_EQ(ValidateRegistration(unnamed).code(), absl::StatusCode::kInvalidArgument);
  NodeRegistration long_host = Registration("a");
  long_host.host = std::string(kMaxNodeHostBytes + 1, 'h');
  absl::Status status = ValidateRegistration(long_host);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("host"), std::string::npos) << status;
  NodeRegistration tiny_slab = Registration("a");
  tiny_slab.slab_size = 1;
  EXPECT_EQ(ValidateRegistration(tiny_slab).code(), absl::StatusCode::kInvalidArgument);
  NodeRegistration many = Registration("a");
  many.transports.assign(kMaxNodeTransports + 1, "tcp");
  EXPECT_EQ(ValidateRegistration(many).code(), absl::StatusCode::kInvalidArgument);
}

TEST(NodeRegistryTest, ANameIsClaimedAgainOnlyWithItsIdentityAndOnlyInItsPool) {
  NodeRegistry nodes;
  NodeEntry& a = AddUp(nodes, Registration("a", "secret-a"));
  absl::StatusOr<NodeEntry*> same = nodes.Claim(Registration("a", "secret-a"), "pool-1");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(*same, &a);
  EXPECT_EQ(nodes.Claim(Registration("a", "other"), "pool-1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<NodeEntry*> fresh = nodes.Claim(Registration("b"), "pool-1");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*fresh, nullptr);  // a new node
  NodeRegistration elsewhere = Registration("b");
  elsewhere.pool_id = "pool-2";
  EXPECT_EQ(nodes.Claim(elsewhere, "pool-1").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(NodeRegistryTest, NewNodesPastTheCapAreRefusedButKnownOnesStillRegister) {
  NodeRegistry nodes;
  for (size_t i = 0; i < kMaxNodes; ++i) AddUp(nodes, Registration("n" + std::to_string(i)));
  EXPECT_EQ(nodes.Claim(Registration("one-more"), "p").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(nodes.Claim(Registration("n7"), "p").ok());
}

TEST(NodeRegistryTest, IdsContinuePastTheNodesRestoredFromTheCatalog) {
  NodeRegistry nodes;
  NodeRecord known;
  known.node_id = 41;
  known.slab_size = 1 << 20;
  NodeEntry& restored = nodes.Restore(known, kNow);
  EXPECT_FALSE(restored.up());  // down until it registers again
  EXPECT_EQ(nodes.Add(1 << 20, kNow).record.node_id, 42u);
  EXPECT_EQ(nodes.Find(41), &restored);
  nodes.Erase(41);
  EXPECT_EQ(nodes.Find(41), nullptr);
}

TEST(NodeRegistryTest, CapacityCountsLiveNodesAndTakingExcludesDrainingOnes) {
  NodeRegistry nodes;
  NodeEntry& a = AddUp(nodes, Registration("a"));
  NodeEntry& b = AddUp(nodes, Registration("b"));
  nodes.Add(1 << 20, kNow);  // known, down
  EXPECT_EQ(nodes.LiveCapacity(), a.allocator.capacity() + b.allocator.capacity());
  EXPECT_EQ(nodes.TakingObjects(), 2);
  b.record.draining = true;
  EXPECT_EQ(nodes.TakingObjects(), 1);
  EXPECT_EQ(nodes.FindByNameOrAddress("a"), &a);
  EXPECT_EQ(nodes.FindByNameOrAddress("host-b:7400"), &b);
  EXPECT_EQ(nodes.FindByNameOrAddress("zz"), nullptr);
}

TEST(NodeRegistryTest, TheRestartWaitEndsWhenEveryKnownNodeIsBackOrTimeRunsOut) {
  NodeRegistry nodes;
  NodeRecord known;
  known.node_id = 1;
  known.slab_size = 1 << 20;
  NodeEntry& node = nodes.Restore(known, kNow);
  nodes.AwaitRestartedUntil(kNow + absl::Seconds(2));
  EXPECT_TRUE(nodes.AwaitingRestarted(kNow));
  EXPECT_FALSE(nodes.AwaitingRestarted(kNow + absl::Seconds(3)));
  node.registered_since_start = true;
  EXPECT_FALSE(nodes.AwaitingRestarted(kNow));
}

TEST(NodeRegistryTest, TransitionsAreCountedOnlyWhenTheStateChanges) {
  NodeRegistry nodes;
  NodeEntry& node = AddUp(nodes, Registration("a"));
  uint64_t before = nodes.liveness_changes();
  nodes.LogTransition(node, std::nullopt);
  EXPECT_EQ(nodes.liveness_changes(), before);
  nodes.LogTransition(node, node.health.TimedOut(absl::Seconds(9), kNow));
  EXPECT_EQ(nodes.liveness_changes(), before + 1);
  EXPECT_FALSE(node.up());
}

TEST(HeartbeatTimesTest, MadeUpIdsDoNotGrowTheMap) {
  HeartbeatTimes heard;
  heard.Note(7, kNow, /*only_if_known=*/true);
  EXPECT_EQ(heard.LastHeard(7), absl::InfinitePast());
  heard.Note(7, kNow, /*only_if_known=*/false);
  heard.Note(7, kNow - absl::Seconds(1), /*only_if_known=*/true);  // late: kept the newest
  EXPECT_EQ(heard.LastHeard(7), kNow);
  heard.Forget(7);
  EXPECT_EQ(heard.LastHeard(7), absl::InfinitePast());
}

}  // namespace
}  // namespace unipool
