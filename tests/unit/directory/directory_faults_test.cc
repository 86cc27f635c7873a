// Fault handling in the directory: the up -> suspect -> down state machine
// (node_health.h) on its own, then through the Directory (reports, probes,
// lookups and placement that avoid nodes not up, re-replication planning),
// over a real RocksDB catalog. Time is a fake clock: nothing sleeps.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/node_health.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

constexpr uint64_t MiB = 1 << 20;
const absl::Time kStart = absl::FromUnixSeconds(1'764'064'800);

// ------------------------------------------------------------ NodeHealth

TEST(NodeHealthTest, ReportProbeAndHeartbeat) {
  NodeHealth health(kStart);
  EXPECT_EQ(health.state(), Liveness::kDown);
  ASSERT_TRUE(health.Registered(kStart).has_value());
  EXPECT_TRUE(health.up());

  // A report makes it suspect and owes a probe; a second report changes nothing.
  auto t = health.Reported(kStart + absl::Seconds(1));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->from, Liveness::kUp);
  EXPECT_EQ(t->to, Liveness::kSuspect);
  EXPECT_TRUE(health.probe_due());
  EXPECT_EQ(health.down_since(), kStart + absl::Seconds(1));
  EXPECT_FALSE(health.Reported(kStart + absl::Seconds(1)).has_value());
  uint64_t epoch = health.probe_epoch();
  health.ProbeTaken();
  EXPECT_FALSE(health.probe_due());
  // A heartbeat does not clear a suspicion: only the probe does.
  EXPECT_FALSE(health.Heartbeat(false, kStart + absl::Seconds(1)).has_value());
  EXPECT_EQ(health.state(), Liveness::kSuspect);

  // The probe answers: up, and reports are ignored for the cooldown.
  t = health.ProbeFinished(epoch, true, "", kStart + absl::Seconds(2));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, Liveness::kUp);
  EXPECT_FALSE(health.Reported(kStart + absl::Seconds(2)).has_value());
  ASSERT_TRUE(health.Reported(kStart + absl::Seconds(2) + NodeHealth::kReportCooldown).has_value());

  // No answer: down at once. An answer to an older probe is ignored.
  EXPECT_FALSE(health.ProbeFinished(epoch, true, "", kStart + absl::Seconds(3)).has_value());
  t = health.ProbeFinished(health.probe_epoch(), false, "connection refused",
                           kStart + absl::Seconds(3));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, Liveness::kDown);
  EXPECT_NE(t->reason.find("connection refused"), std::string::npos);

  // Down by a failed probe: a heartbeat only makes it suspect (probed again).
  t = health.Heartbeat(false, kStart + absl::Seconds(4));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, Liveness::kSuspect);
  EXPECT_TRUE(health.probe_due());
  ASSERT_TRUE(health.ProbeFinished(health.probe_epoch(), true, "", kStart + absl::Seconds(4)));
  EXPECT_TRUE(health.up());
}

TEST(NodeHealthTest, SilenceAndRdmaLink) {
  NodeHealth health(kStart);
  health.Registered(kStart);
  auto t = health.TimedOut(absl::Seconds(6), kStart + absl::Seconds(6));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, Liveness::kDown);
  EXPECT_FALSE(health.TimedOut(absl::Seconds(7), kStart + absl::Seconds(7)).has_value());
  // Down by silence: a heartbeat brings it straight back.
  t = health.Heartbeat(false, kStart + absl::Seconds(8));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, Liveness::kUp);
  t = health.Heartbeat(true, kStart + absl::Seconds(9));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->to, Liveness::kDown);
  EXPECT_FALSE(health.Reported(kStart + absl::Seconds(9)).has_value());  // already down
  ASSERT_TRUE(health.Heartbeat(false, kStart + absl::Seconds(10)).has_value());
  EXPECT_TRUE(health.up());
}

// ------------------------------------------------------------ Directory

class DirectoryFaultsTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    options.rereplicate_after = kRereplicateAfter;
    options.rereplicate_bytes_per_second = kRate;
  }

  NodeId Register(const std::string& name) {
    NodeRegistration reg;
    reg.name = name;
    reg.host = "host-" + name;
    reg.data_address = "127.0.0.1:1/" + name;
    reg.slab_id = 7;
    reg.slab_size = 64 * MiB;
    auto result = directory_->RegisterNode(reg);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->node_id : 0;
  }
  // Puts `key` with `replicas` copies; returns the nodes holding them.
  std::vector<NodeId> Put(std::string_view key, int replicas) {
    PutRequest request{key, 1 * MiB, false, replicas};
    auto reservation = directory_->PutStart({&request, 1}).at(0);
    EXPECT_TRUE(reservation.ok()) << reservation.status();
    if (!reservation.ok()) return {};
    CommitRequest commit{reservation->put_id, 42};
    EXPECT_TRUE(directory_->PutCommit({&commit, 1}).at(0).ok());
    std::vector<NodeId> nodes;
    for (const CopyLocation& c : reservation->location.copies) nodes.push_back(c.node_id);
    return nodes;
  }
  Liveness StateOf(NodeId id) {
    for (const NodeState& n : directory_->Status().nodes) {
      if (n.node_id == id)
        return n.up ? Liveness::kUp : n.suspect ? Liveness::kSuspect : Liveness::kDown;
    }
    ADD_FAILURE() << "no node " << id;
    return Liveness::kDown;
  }
  // Marks `id` down the way a dead node is: reported, probed, no answer.
  void KillByProbe(NodeId id) {
    directory_->ReportUnreachable({&id, 1});
    auto probes = directory_->TakeProbes(absl::ZeroDuration());
    ASSERT_EQ(probes.size(), 1u);
    directory_->FinishProbe(probes[0], absl::UnavailableError("connection refused"));
  }

  static constexpr absl::Duration kRereplicateAfter = absl::Seconds(10);
  static constexpr uint64_t kRate = 16 * MiB;  // per second
};

TEST_F(DirectoryFaultsTest, SuspectNodeIsNeitherReadNorPlacedAndProbeDecides) {
  NodeId a = Register("a");
  NodeId b = Register("b");
  std::vector<NodeId> both = Put("two-copies", 2);
  ASSERT_EQ(both.size(), 2u);
  Put("only-a", 1);  // the emptier node after the first put: a tie, lowest id
  ASSERT_EQ(Find("only-a")->copies[0].node_id, a);

  directory_->ReportUnreachable({&a, 1});
  EXPECT_EQ(StateOf(a), Liveness::kSuspect);
  // Lookups skip a's copy; an object only there is a miss.
  auto found = Find("two-copies");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->copies.size(), 1u);
  EXPECT_EQ(found->copies[0].node_id, b);
  EXPECT_EQ(Find("only-a").status().code(), absl::StatusCode::kNotFound);
  std::string_view key = "only-a";
  EXPECT_FALSE(directory_->Exists({&key, 1}).at(0));
  // Placement skips it.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Put("new" + std::to_string(i), 1).at(0), b);

  // The probe answers: a is up again and readable.
  auto probes = directory_->TakeProbes(absl::ZeroDuration());
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0].node_id, a);
  directory_->FinishProbe(probes[0], absl::OkStatus());
  EXPECT_EQ(StateOf(a), Liveness::kUp);
  EXPECT_EQ(Find("only-a")->copies[0].node_id, a);
  EXPECT_EQ(Find("two-copies")->copies.size(), 2u);

  // Reported again later, no answer: down at once, no node timeout needed.
  now_ += absl::Seconds(1);
  KillByProbe(a);
  EXPECT_EQ(StateOf(a), Liveness::kDown);
  EXPECT_TRUE(directory_->TakeProbes(absl::ZeroDuration()).empty());
  // Unknown ids in a report are ignored.
  NodeId unknown = 999;
  directory_->ReportUnreachable({&unknown, 1});
  // Registering again (node restarted) brings it up.
  Register("a");
  EXPECT_EQ(StateOf(a), Liveness::kUp);
}

TEST_F(DirectoryFaultsTest, CopiesOfANodeDownPastTheDelayAreReReplicated) {
  NodeId a = Register("a");
  NodeId b = Register("b");
  NodeId c = Register("c");
  constexpr int kObjects = 12;
  int on_a = 0;
  for (int i = 0; i < kObjects; ++i) {
    std::vector<NodeId> nodes = Put("obj" + std::to_string(i), 2);
    on_a += std::count(nodes.begin(), nodes.end(), a);
  }
  Put("single-on-a", 1);
  ASSERT_GT(on_a, 0);
  KillByProbe(a);
  directory_->Tick();
  EXPECT_EQ(directory_->Status().under_replicated, static_cast<uint64_t>(on_a) + 1);
  // Not before the delay: a node restarted with its slab keeps its copies.
  EXPECT_TRUE(directory_->PlanMoves(1000).empty());

  now_ += kRereplicateAfter;
  std::vector<MovePlan> moves = directory_->PlanMoves(1000);
  // Every copy on a that has another copy, read from that copy, onto the third node.
  ASSERT_EQ(moves.size(), static_cast<size_t>(on_a));
  for (const MovePlan& move : moves) {
    EXPECT_TRUE(move.repair);
    EXPECT_EQ(move.from_node, a);
    EXPECT_NE(move.source_node, a);
    EXPECT_NE(move.target_node, a);
    EXPECT_NE(move.target_node, move.source_node);
    directory_->FinishMove(move, /*copied=*/true);
  }
  now_ += absl::Seconds(1);
  for (NodeId alive : {b, c}) ASSERT_TRUE(directory_->Heartbeat(alive, 7, {}).ok());
  directory_->Tick();
  PoolState status = directory_->Status();
  EXPECT_EQ(status.copies_rereplicated, static_cast<uint64_t>(on_a));
  // Only the object that had no other copy is left (it comes back with a).
  EXPECT_EQ(status.under_replicated, 1u);
  for (int i = 0; i < kObjects; ++i) {
    auto found = Find("obj" + std::to_string(i));
    ASSERT_TRUE(found.ok());
    ASSERT_EQ(found->copies.size(), 2u);
    for (const CopyLocation& copy : found->copies) EXPECT_NE(copy.node_id, a);
  }
}

TEST_F(DirectoryFaultsTest, ReReplicationIsRateLimited) {
  Register("a");
  Register("b");
  NodeId c = Register("c");
  // 64 objects of 1 MiB, two copies each: about 43 copies on each node.
  for (int i = 0; i < 64; ++i) Put("obj" + std::to_string(i), 2);
  KillByProbe(c);
  now_ += kRereplicateAfter;
  // The repair starts with one second's bytes: 16 moves of 1 MiB.
  std::vector<MovePlan> moves = directory_->PlanMoves(1000);
  EXPECT_EQ(moves.size(), kRate / MiB);
  for (const MovePlan& move : moves) directory_->FinishMove(move, true);
  EXPECT_TRUE(directory_->PlanMoves(1000).empty());  // budget spent, no time passed
  now_ += absl::Milliseconds(500);
  EXPECT_EQ(directory_->PlanMoves(1000).size(), kRate / MiB / 2);
}

}  // namespace
}  // namespace unipool
