// The Directory's nodes over a real RocksDB catalog: registration, liveness,
// re-registration with the same or a new slab, identities, pools, bounds and
// forgetting. Time is the fixture's fake clock: nothing sleeps.
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

class DirectoryNodesTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    options.forget_node_after = forget_node_after_;
  }

  absl::Duration forget_node_after_ = absl::Hours(24 * 7);
};

// ------------------------------------------------------------ registration

TEST_F(DirectoryNodesTest, RegistersNodes) {
  auto a = Register(kNodeA);
  auto b = Register(kNodeB);
  auto c = Register(kNodeC);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_FALSE(a->readmitted);
  EXPECT_EQ(a->objects_dropped, 0u);
  std::set<NodeId> ids = {a->node_id, b->node_id, c->node_id};
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(0), 0u) << "node id 0 is the 'no node' value";

  PoolState status = directory_->Status();
  ASSERT_EQ(status.nodes.size(), 3u);
  EXPECT_EQ(status.capacity, 160 * MiB);
  EXPECT_EQ(status.used, 0u);
  EXPECT_EQ(status.objects, 0u);
  EXPECT_EQ(status.pending_puts, 0u);
  for (const NodeState& node : status.nodes) {
    EXPECT_TRUE(node.up) << node.name;
    EXPECT_EQ(node.data_address, AddressOf(node.name));
    EXPECT_EQ(node.transports, std::vector<std::string>{"tcp"});
  }
  auto c_status = NodeStatusOf(c->node_id);
  ASSERT_TRUE(c_status.has_value());
  EXPECT_EQ(c_status->name, "node-c");
  EXPECT_EQ(c_status->capacity, 32 * MiB);
  EXPECT_EQ(c_status->largest_free, 32 * MiB);
}

TEST_F(DirectoryNodesTest, BadRegistrationsAreInvalidArgument) {
  EXPECT_EQ(Register({"", 1, 64 * MiB}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Register({"tiny", 1, 4095}).status().code(), absl::StatusCode::kInvalidArgument);
  NodeRegistration no_address;
  no_address.name = "x";
  no_address.slab_size = 64 * MiB;
  EXPECT_EQ(directory_->RegisterNode(no_address).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(directory_->Status().nodes.empty());
}

// ------------------------------------------------------------ nodes

// A node whose RDMA link drops says so in its next heartbeat and is down at
// once (not after the heartbeat timeout); a beat with the link back brings
// it up again.
TEST_F(DirectoryNodesTest, RdmaLinkDownMarksTheNodeDownUntilItIsBack) {
  NodeId a = MustRegister(kNodeA);
  NodeId b = MustRegister(kNodeB);
  Put("on-a", 1 * MiB, 1);
  ASSERT_EQ(Find("on-a")->copies[0].node_id, a);
  ASSERT_TRUE(directory_->Heartbeat(a, kNodeA.slab_id, {}, /*rdma_link_down=*/true).ok());
  EXPECT_FALSE(UpOf(a));
  EXPECT_TRUE(UpOf(b));
  EXPECT_FALSE(Find("on-a").ok() && Find("on-a")->copies[0].node_up);
  for (int i = 0; i < 4; ++i) {
    auto r = Start("while-a-is-cut-off-" + std::to_string(i), 1 * MiB);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->location.copies[0].node_id, b);
  }
  ASSERT_TRUE(directory_->Heartbeat(a, kNodeA.slab_id, {}, /*rdma_link_down=*/false).ok());
  EXPECT_TRUE(UpOf(a));
  ASSERT_TRUE(Find("on-a").ok());
  EXPECT_TRUE(Find("on-a")->copies[0].node_up);
}

TEST_F(DirectoryNodesTest, SilentNodeIsMarkedDownAndHeartbeatBringsItBack) {
  NodeId a = MustRegister(kNodeA);
  NodeId b = MustRegister(kNodeB);
  // Equal free space: ties go to the lowest id.
  ASSERT_LT(a, b);
  Put("on-a", 1 * MiB, 1);
  ASSERT_EQ(Find("on-a")->copies[0].node_id, a);

  Advance(absl::Seconds(3));
  EXPECT_EQ(NodeStatusOf(a)->since_heartbeat, absl::Seconds(3));
  ASSERT_TRUE(directory_->Heartbeat(b, kNodeB.slab_id, {10, 20, 1, 2}).ok());
  Advance(kNodeTimeout);  // a: 8 s silent, b: 5 s
  directory_->Tick();
  EXPECT_FALSE(UpOf(a));
  EXPECT_TRUE(UpOf(b));
  // Its only copy is on a node down: a miss.
  EXPECT_EQ(Find("on-a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(NodeStatusOf(b)->counters.bytes_written, 20u);

  // New puts go only to live nodes.
  for (int i = 0; i < 8; ++i) {
    auto r = Start("new" + std::to_string(i), 1 * MiB);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->location.copies[0].node_id, b);
  }

  // A heartbeat with the wrong slab or from an unknown node is refused.
  EXPECT_EQ(directory_->Heartbeat(a, kNodeA.slab_id + 1, {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(directory_->Heartbeat(4242, 1, {}).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(UpOf(a));

  ASSERT_TRUE(directory_->Heartbeat(a, kNodeA.slab_id, {}).ok());
  EXPECT_TRUE(UpOf(a));
  EXPECT_TRUE(Find("on-a")->copies[0].node_up);

  // Everything silent: no live node, so no room.
  Advance(kNodeTimeout + absl::Seconds(1));
  directory_->Tick();
  EXPECT_FALSE(UpOf(a));
  EXPECT_FALSE(UpOf(b));
  // Unavailable (retry later), not ResourceExhausted: nothing is full.
  EXPECT_EQ(Start("nowhere", 4 * KiB).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DirectoryNodesTest, ReRegistrationWithTheSameSlabKeepsObjects) {
  NodeId a = MustRegister(kNodeA);
  NodeId b = MustRegister(kNodeB);
  Put("k1", 1 * MiB, 1);
  Put("k2", 1 * MiB, 2);
  auto before = Find("k1");
  ASSERT_TRUE(before.ok());
  uint64_t used = Used();

  Advance(kNodeTimeout + absl::Seconds(1));
  directory_->Tick();
  auto again = Register(kNodeA);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->node_id, a);
  EXPECT_TRUE(again->readmitted);
  EXPECT_EQ(again->objects_dropped, 0u);
  EXPECT_TRUE(UpOf(a));
  EXPECT_FALSE(UpOf(b));
  auto after = Find("k1");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->copies[0].offset, before->copies[0].offset);
  EXPECT_EQ(after->version, before->version);
  // k2 went to b (more room), which is down: a miss until b is back.
  EXPECT_EQ(Find("k2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Used(), used);
}

TEST_F(DirectoryNodesTest, ReRegistrationWithANewSlabDropsItsObjects) {
  // Placement goes to the node with the most free bytes (ties: lowest id);
  // the sizes below steer each put.
  TestNode big_a = kNodeA;
  big_a.slab_size = 80 * MiB;
  NodeId a = MustRegister(big_a);
  NodeId b = MustRegister(kNodeB);  // 64 MiB
  ASSERT_LT(a, b);
  Put("a1", 8 * MiB, 1);  // A: 72 MiB free
  Put("a2", 8 * MiB, 2);  // A: 64 MiB free
  Put("a3", 8 * MiB, 3);  // tie: A, 56 MiB free
  ASSERT_EQ(Find("a1")->copies[0].node_id, a);
  ASSERT_EQ(Find("a3")->copies[0].node_id, a);
  Put("b1", 8 * MiB, 4);  // B: 56 MiB free
  ASSERT_EQ(Find("b1")->copies[0].node_id, b);
  // A reservation on A (tie again), pending while A loses its memory.
  auto pending_on_a = Start("a4", 4 * MiB);
  ASSERT_TRUE(pending_on_a.ok());
  ASSERT_EQ(pending_on_a->location.copies[0].node_id, a);
  EXPECT_EQ(UsedOn(a), 28 * MiB);

  TestNode new_slab = big_a;
  new_slab.slab_id = 0xa2;
  auto again = Register(new_slab);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->node_id, a);
  EXPECT_FALSE(again->readmitted);
  EXPECT_EQ(again->objects_dropped, 3u);
  for (std::string_view key : {"a1", "a2", "a3"}) {
    EXPECT_EQ(Find(key).status().code(), absl::StatusCode::kNotFound) << key;
  }
  EXPECT_TRUE(Find("b1").ok());
  EXPECT_EQ(Commit(pending_on_a->put_id, 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(UsedOn(a), 0u);
  EXPECT_EQ(NodeStatusOf(a)->objects, 0u);
  EXPECT_EQ(directory_->Status().objects, 1u);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  // The old slab id is no longer accepted.
  EXPECT_EQ(directory_->Heartbeat(a, big_a.slab_id, {}).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(directory_->Heartbeat(a, new_slab.slab_id, {}).ok());
  // The dropped keys can be put again without replace.
  EXPECT_TRUE(Start("a1", 4 * KiB).ok());

  // The drop is durable.
  ASSERT_TRUE(Reopen().ok());
  MustRegister(kNodeB);  // readable once its node is back
  EXPECT_EQ(Find("a2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Find("b1").ok());
}

TEST_F(DirectoryNodesTest, ReRegistrationWithAnotherSlabSizeDropsItsObjects) {
  NodeId a = MustRegister(kNodeA);
  Put("k", 1 * MiB, 1);
  TestNode resized = kNodeA;
  resized.slab_size = 32 * MiB;  // same slab id, different memory
  auto again = Register(resized);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->node_id, a);
  EXPECT_FALSE(again->readmitted);
  EXPECT_EQ(again->objects_dropped, 1u);
  EXPECT_EQ(NodeStatusOf(a)->capacity, 32 * MiB);
}

// A registration the directory accepts must not make its catalog unreadable.
// More transports than a record can hold is refused at the door, so a bad
// registration can never leave a catalog the directory cannot reopen.
TEST_F(DirectoryNodesTest, NodeWithTooManyTransportsIsRefusedAndRestartWorks) {
  NodeRegistration reg;
  reg.name = "many";
  reg.data_address = "127.0.0.1:7000";
  reg.slab_id = 9;
  reg.slab_size = 16 * MiB;
  for (size_t i = 0; i <= kMaxNodeTransports; ++i) {
    reg.transports.push_back("transport-" + std::to_string(i));
  }
  EXPECT_EQ(directory_->RegisterNode(reg).status().code(), absl::StatusCode::kInvalidArgument);
  reg.transports.pop_back();
  ASSERT_TRUE(directory_->RegisterNode(reg).ok());
  absl::Status reopened = Reopen();
  EXPECT_TRUE(reopened.ok()) << reopened;
}

// A name held by a node with an identity is refused to anyone else, live or
// down; the holder itself comes back with its objects.
TEST_F(DirectoryNodesTest, ANodeNameBelongsToItsIdentity) {
  auto owner = directory_->RegisterNode(Claim("n1", "secret-of-n1"));
  ASSERT_TRUE(owner.ok()) << owner.status();
  ASSERT_TRUE(Start("k", 4096).ok());
  auto rogue = directory_->RegisterNode(Claim("n1", "another-secret", "", /*slab_id=*/2));
  EXPECT_EQ(rogue.status().code(), absl::StatusCode::kFailedPrecondition) << rogue.status();
  EXPECT_NE(rogue.status().message().find("'n1'"), std::string::npos) << rogue.status();
  auto anonymous = directory_->RegisterNode(Claim("n1", ""));
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kFailedPrecondition);
  // Known but down: still its name, also after a restart of the directory.
  Advance(kNodeTimeout * 2);
  directory_->Tick();
  ASSERT_TRUE(Reopen().ok());
  rogue = directory_->RegisterNode(Claim("n1", "another-secret", "", 2));
  EXPECT_EQ(rogue.status().code(), absl::StatusCode::kFailedPrecondition) << rogue.status();
  auto back = directory_->RegisterNode(Claim("n1", "secret-of-n1", directory_->pool_id()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->readmitted);
  EXPECT_EQ(back->node_id, owner->node_id);
}

TEST_F(DirectoryNodesTest, NodeRecordsAreBounded) {
  NodeRegistration reg = Claim("n1", "id");
  reg.transports = {std::string(kMaxNodeTransportBytes + 1, 't')};
  EXPECT_EQ(directory_->RegisterNode(reg).status().code(), absl::StatusCode::kInvalidArgument);
  reg = Claim(std::string(kMaxNodeNameBytes + 1, 'n'), "id");
  EXPECT_EQ(directory_->RegisterNode(reg).status().code(), absl::StatusCode::kInvalidArgument);
  reg = Claim("n1", "id");
  reg.host = std::string(kMaxNodeHostBytes + 1, 'h');
  EXPECT_EQ(directory_->RegisterNode(reg).status().code(), absl::StatusCode::kInvalidArgument);
  reg = Claim("n1", "id");
  reg.slab_size = kMaxNodeSlabBytes + 1;
  EXPECT_EQ(directory_->RegisterNode(reg).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(directory_->Status().nodes.empty());
}

// A node silent for forget_node_after is dropped with the objects only it
// held; its name is free again.
TEST_F(DirectoryNodesTest, NodesGoneForLongAreForgotten) {
  forget_node_after_ = absl::Hours(1);
  ASSERT_TRUE(Reopen().ok());
  ASSERT_TRUE(directory_->RegisterNode(Claim("gone", "id-1")).ok());
  auto put = Start("only-there", 4096);
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE(Commit(put->put_id, 7).ok());
  Advance(absl::Minutes(59));
  directory_->Tick();
  EXPECT_EQ(directory_->Status().nodes.size(), 1u);
  Advance(absl::Minutes(2));
  directory_->Tick();
  EXPECT_TRUE(directory_->Status().nodes.empty());
  EXPECT_EQ(directory_->Status().objects, 0u);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_TRUE(directory_->Status().nodes.empty());
  EXPECT_TRUE(directory_->RegisterNode(Claim("gone", "id-2")).ok());
}

// The catalog carries the pool's id across restarts; a node of another
// pool (this directory's catalog was lost) is refused.
TEST_F(DirectoryNodesTest, NodesOfAnotherPoolAreRefused) {
  std::string pool = directory_->pool_id();
  EXPECT_EQ(pool.size(), 32u);
  auto joined = directory_->RegisterNode(Claim("n1", "id"));
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->pool_id, pool);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(directory_->pool_id(), pool);
  directory_.reset();
  std::filesystem::remove_all(db_path_);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_NE(directory_->pool_id(), pool);
  auto refused = directory_->RegisterNode(Claim("n1", "id", pool));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find(pool), std::string::npos) << refused.status();
  EXPECT_TRUE(directory_->RegisterNode(Claim("n2", "id2")).ok());
}

}  // namespace
}  // namespace unipool
