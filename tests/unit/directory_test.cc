// The directory's state machine (unipool/directory/directory.h) over a real
// RocksDB catalog in a private temp directory. Time is a fake clock advanced by the tests: nothing
// sleeps.
#include "unipool/directory/directory.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
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
#include "unipool/testing/temp_dir.h"

namespace unipool {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

constexpr absl::Duration kPutTimeout = absl::Seconds(30);
constexpr absl::Duration kNodeTimeout = absl::Seconds(5);

struct TestNode {
  std::string name;
  uint64_t slab_id;
  uint64_t slab_size;
};

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("directory");
    db_path_ = (dir_ / "catalog").string();
    ASSERT_TRUE(Reopen().ok());
  }
  void TearDown() override {
    directory_.reset();
    testing::RemoveUnlessFailed(dir_.string());
  }

  // Destroys the directory (closing its catalog) and opens it again on the
  // same path, with the same fake clock.
  absl::Status Reopen(bool sync = false) {
    directory_.reset();
    DirectoryOptions options;
    options.put_timeout = kPutTimeout;
    options.node_timeout = kNodeTimeout;
    options.sync = sync ? SyncMode::kAlways : SyncMode::kInterval;
    options.clock = [this] { return now_; };
    // Lookups after a reopen do not wait (in real time) for nodes to return.
    options.restart_grace = absl::ZeroDuration();
    // No read leases: space is free the moment an object goes. Leases,
    // eviction, pins and drains are tested in tests/lifecycle.
    options.lease = absl::ZeroDuration();
    options.forget_node_after = forget_node_after_;
    auto directory = Directory::Open(db_path_, std::move(options));
    if (!directory.ok()) return directory.status();
    directory_ = std::move(*directory);
    return absl::OkStatus();
  }

  void Advance(absl::Duration d) { now_ += d; }

  // A registration of `name` with this identity and pool.
  static NodeRegistration Claim(std::string_view name, std::string_view identity,
                                std::string_view pool_id = "", uint64_t slab_id = 1) {
    NodeRegistration reg;
    reg.name = std::string(name);
    reg.host = "host";
    reg.data_address = "127.0.0.1:7001";
    reg.slab_id = slab_id;
    reg.slab_size = 16 * MiB;
    reg.identity = std::string(identity);
    reg.pool_id = std::string(pool_id);
    return reg;
  }

  static std::string AddressOf(std::string_view name) {
    return "127.0.0.1:" + std::to_string(7000 + name.size()) + "/" + std::string(name);
  }

  absl::StatusOr<RegistrationResult> Register(const TestNode& node) {
    NodeRegistration reg;
    reg.name = node.name;
    reg.host = "host-" + node.name;
    reg.data_address = AddressOf(node.name);
    reg.slab_id = node.slab_id;
    reg.slab_size = node.slab_size;
    reg.transports = {"tcp"};
    return directory_->RegisterNode(reg);
  }
  NodeId MustRegister(const TestNode& node) {
    auto result = Register(node);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->node_id : 0;
  }

  absl::StatusOr<Reservation> Start(std::string_view key, uint64_t length, bool replace = false) {
    PutRequest request{key, length, replace};
    auto results = directory_->PutStart({&request, 1});
    EXPECT_EQ(results.size(), 1u);
    return results.at(0);
  }
  absl::Status Commit(uint64_t put_id, uint64_t checksum) {
    CommitRequest request{put_id, checksum};
    auto results = directory_->PutCommit({&request, 1});
    EXPECT_EQ(results.size(), 1u);
    return results.at(0);
  }
  // PutStart + PutCommit; returns the version.
  uint64_t Put(std::string_view key, uint64_t length, uint64_t checksum, bool replace = false) {
    auto reservation = Start(key, length, replace);
    EXPECT_TRUE(reservation.ok()) << key << ": " << reservation.status();
    if (!reservation.ok()) return 0;
    absl::Status committed = Commit(reservation->put_id, checksum);
    EXPECT_TRUE(committed.ok()) << key << ": " << committed;
    return reservation->location.version;
  }
  absl::StatusOr<ObjectInfo> Find(std::string_view key) {
    auto results = directory_->Lookup({&key, 1});
    EXPECT_EQ(results.size(), 1u);
    return results.at(0);
  }
  bool Exists(std::string_view key) { return directory_->Exists({&key, 1}).at(0); }
  absl::Status Remove(std::string_view key) { return directory_->Remove({&key, 1}).at(0); }
  void Abort(uint64_t put_id) { directory_->PutAbort({&put_id, 1}); }

  uint64_t Used() { return directory_->Status().used; }
  std::optional<NodeState> NodeStatusOf(NodeId id) {
    for (NodeState& node : directory_->Status().nodes) {
      if (node.node_id == id) return node;
    }
    return std::nullopt;
  }
  uint64_t UsedOn(NodeId id) {
    auto node = NodeStatusOf(id);
    EXPECT_TRUE(node.has_value()) << "node " << id;
    return node ? node->used : 0;
  }
  bool UpOf(NodeId id) {
    auto node = NodeStatusOf(id);
    EXPECT_TRUE(node.has_value()) << "node " << id;
    return node && node->up;
  }

  std::filesystem::path dir_;
  std::string db_path_;
  absl::Time now_ = absl::FromUnixSeconds(1'764'064'800);  // 2025-11-25
  std::unique_ptr<Directory> directory_;
  absl::Duration forget_node_after_ = absl::Hours(24 * 7);
};

const TestNode kNodeA{"node-a", 0xa1, 64 * MiB};
const TestNode kNodeB{"node-b", 0xb1, 64 * MiB};
const TestNode kNodeC{"node-c", 0xc1, 32 * MiB};

// ------------------------------------------------------------ registration

TEST_F(DirectoryTest, RegistersNodes) {
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

TEST_F(DirectoryTest, BadRegistrationsAreInvalidArgument) {
  EXPECT_EQ(Register({"", 1, 64 * MiB}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Register({"tiny", 1, 4095}).status().code(), absl::StatusCode::kInvalidArgument);
  NodeRegistration no_address;
  no_address.name = "x";
  no_address.slab_size = 64 * MiB;
  EXPECT_EQ(directory_->RegisterNode(no_address).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(directory_->Status().nodes.empty());
}

// ------------------------------------------------------------ two-phase put

TEST_F(DirectoryTest, TwoPhasePut) {
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

TEST_F(DirectoryTest, PlacementsOfABatchAreDisjointAndSpread) {
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

TEST_F(DirectoryTest, ExistingKeyIsAlreadyExistsUnlessReplaced) {
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

TEST_F(DirectoryTest, ReplaceTwiceInOneCommitBatchKeepsTheLast) {
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

TEST_F(DirectoryTest, TwoPendingPutsOfOneKeyFirstCommitWins) {
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

TEST_F(DirectoryTest, TwoPendingPutsOfOneKeyInOneCommitBatch) {
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

TEST_F(DirectoryTest, ExpiredReservationIsReclaimedByTick) {
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

TEST_F(DirectoryTest, CommitAfterTheDeadlineIsNotFoundEvenWithoutTick) {
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

TEST_F(DirectoryTest, PutAbortFrees) {
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

TEST_F(DirectoryTest, RemoveFreesAndHidesTheObject) {
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

TEST_F(DirectoryTest, BatchesWithDuplicatesAreHandled) {
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

// ------------------------------------------------------------ nodes

// A node whose RDMA link drops says so in its next heartbeat and is down at
// once (not after the heartbeat timeout); a beat with the link back brings
// it up again.
TEST_F(DirectoryTest, RdmaLinkDownMarksTheNodeDownUntilItIsBack) {
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

TEST_F(DirectoryTest, SilentNodeIsMarkedDownAndHeartbeatBringsItBack) {
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

TEST_F(DirectoryTest, ReRegistrationWithTheSameSlabKeepsObjects) {
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

TEST_F(DirectoryTest, ReRegistrationWithANewSlabDropsItsObjects) {
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

TEST_F(DirectoryTest, ReRegistrationWithAnotherSlabSizeDropsItsObjects) {
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

// ------------------------------------------------------------ limits

TEST_F(DirectoryTest, PoolFullIsResourceExhausted) {
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

TEST_F(DirectoryTest, BadKeysAndLengthsAreInvalidArgument) {
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
TEST_F(DirectoryTest, ConcurrentClientsKeepExactAccounting) {
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
TEST_F(DirectoryTest, ConcurrentCommitsAreGroupedAndTheCatalogMatchesTheMap) {
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

// ------------------------------------------------------------ recovery

TEST_F(DirectoryTest, RecoversEverythingFromTheCatalog) {
  ASSERT_TRUE(Reopen(/*sync=*/true).ok());
  std::map<NodeId, TestNode> nodes;
  for (const TestNode& n : {kNodeA, kNodeB, kNodeC}) nodes[MustRegister(n)] = n;

  uint64_t max_version = 0;
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) {
    keys.push_back("obj-" + std::to_string(i));
    max_version = std::max(max_version, Put(keys.back(), (i % 5 + 1) * 300 * KiB, 1000 + i));
  }
  max_version = std::max(max_version, Put("obj-3", 2 * MiB, 77, /*replace=*/true));
  ASSERT_TRUE(Remove("obj-7").ok());
  ASSERT_TRUE(Remove("obj-8").ok());
  auto aborted = Start("aborted", 1 * MiB);
  ASSERT_TRUE(aborted.ok());
  Abort(aborted->put_id);
  max_version = std::max(max_version, aborted->location.version);
  // Left pending across the restart.
  auto pending = Start("pending", 3 * MiB);
  ASSERT_TRUE(pending.ok());
  max_version = std::max(max_version, pending->location.version);
  const ObjectInfo reserved = pending->location;

  std::map<std::string, absl::StatusOr<ObjectInfo>> before;
  for (const std::string& key : keys) before.emplace(key, Find(key));
  PoolState status_before = directory_->Status();
  ASSERT_EQ(status_before.pending_puts, 1u);

  Advance(absl::Seconds(10));
  ASSERT_TRUE(Reopen(/*sync=*/true).ok());

  // Known nodes are back, down until they register.
  PoolState status_after = directory_->Status();
  ASSERT_EQ(status_after.nodes.size(), 3u);
  for (const NodeState& node : status_after.nodes) EXPECT_FALSE(node.up) << node.name;
  EXPECT_EQ(status_after.used, status_before.used);
  EXPECT_EQ(status_after.capacity, status_before.capacity);
  EXPECT_EQ(status_after.objects, status_before.objects);
  EXPECT_EQ(status_after.pending_puts, 1u);
  for (size_t i = 0; i < status_after.nodes.size(); ++i) {
    EXPECT_EQ(status_after.nodes[i].node_id, status_before.nodes[i].node_id);
    EXPECT_EQ(status_after.nodes[i].used, status_before.nodes[i].used);
    EXPECT_EQ(status_after.nodes[i].objects, status_before.nodes[i].objects);
    EXPECT_EQ(status_after.nodes[i].data_address, status_before.nodes[i].data_address);
  }

  // The nodes are down: every object is a miss until they register.
  for (const std::string& key : keys) {
    EXPECT_EQ(Find(key).status().code(), absl::StatusCode::kNotFound) << key;
  }
  EXPECT_EQ(Find("aborted").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Find("pending").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Start("more", 4 * KiB).status().code(), absl::StatusCode::kUnavailable)
      << "no node has registered yet";

  // The nodes come back with their slabs: readmitted, same ids.
  for (const auto& [id, node] : nodes) {
    auto again = Register(node);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->node_id, id);
    EXPECT_TRUE(again->readmitted);
  }
  // Same answers as before the restart.
  for (const std::string& key : keys) {
    auto now = Find(key);
    const auto& then = before.at(key);
    ASSERT_EQ(now.status().code(), then.status().code()) << key;
    if (!now.ok()) continue;
    EXPECT_EQ(now->copies[0].node_id, then->copies[0].node_id) << key;
    EXPECT_EQ(now->copies[0].node_address, then->copies[0].node_address) << key;
    EXPECT_EQ(now->copies[0].offset, then->copies[0].offset) << key;
    EXPECT_EQ(now->length, then->length) << key;
    EXPECT_EQ(now->version, then->version) << key;
    EXPECT_EQ(now->checksum, then->checksum) << key;
    EXPECT_TRUE(now->copies[0].node_up) << key;
  }
  EXPECT_EQ(Find("obj-3")->checksum, 77u);
  EXPECT_EQ(Find("obj-7").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Used(), status_before.used);

  // Fill the pool completely (large reservations, then 4 KiB ones for the
  // holes): no new reservation may touch the pending one's bytes, and every
  // new version is above every earlier one.
  // Pinned, so that the fill cannot evict them to make room.
  ASSERT_TRUE(directory_->Pin("obj-", /*prefix=*/true).ok());
  uint64_t filled = 0;
  auto fill = [&](uint64_t size) {
    for (int i = 0; i < 100000; ++i) {
      auto r = Start("fill-" + std::to_string(size) + "-" + std::to_string(i), size);
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
        return;
      }
      ++filled;
      EXPECT_GT(r->location.version, max_version);
      if (r->location.copies[0].node_id == reserved.copies[0].node_id) {
        bool disjoint =
            r->location.copies[0].offset + r->location.length <= reserved.copies[0].offset ||
            reserved.copies[0].offset + RoundUpToAllocation(reserved.length) <=
                r->location.copies[0].offset;
        EXPECT_TRUE(disjoint) << "reservation at " << r->location.copies[0].offset
                              << " overlaps the recovered pending put at "
                              << reserved.copies[0].offset;
      }
    }
    ADD_FAILURE() << "the pool never filled up";
  };
  fill(256 * KiB);
  fill(4 * KiB);
  EXPECT_GT(filled, 100u);
  EXPECT_EQ(Used(), directory_->Status().capacity);
  EXPECT_EQ(directory_->Status().pending_puts, filled + 1);

  // The recovered reservation expires at its original deadline (10 s of it
  // passed before the restart), before the fill reservations made after the
  // restart: then its space returns and its commit fails.
  auto heartbeat_all = [&] {
    for (const auto& [id, node] : nodes) {
      EXPECT_TRUE(directory_->Heartbeat(id, node.slab_id, {}).ok());
    }
  };
  Advance(kPutTimeout - absl::Seconds(10) - absl::Seconds(1));
  heartbeat_all();
  directory_->Tick();
  EXPECT_EQ(directory_->Status().pending_puts, filled + 1);
  Advance(absl::Seconds(2));
  heartbeat_all();
  directory_->Tick();
  EXPECT_EQ(directory_->Status().pending_puts, filled);
  EXPECT_EQ(Used(), directory_->Status().capacity - RoundUpToAllocation(reserved.length));
  EXPECT_EQ(directory_->Status().objects, status_before.objects);
  EXPECT_EQ(Commit(pending->put_id, 1).code(), absl::StatusCode::kNotFound);
  // Its space is handed out again.
  auto reuse = Start("reuse", reserved.length);
  ASSERT_TRUE(reuse.ok()) << reuse.status();
  EXPECT_EQ(reuse->location.copies[0].node_id, reserved.copies[0].node_id);
  EXPECT_EQ(reuse->location.copies[0].offset, reserved.copies[0].offset);
}

TEST_F(DirectoryTest, RecoveredReservationCanStillBeCommitted) {
  NodeId a = MustRegister(kNodeA);
  auto pending = Start("p", 1 * MiB);
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(directory_->Status().pending_puts, 1u);
  ASSERT_TRUE(Register(kNodeA).ok());
  ASSERT_TRUE(Commit(pending->put_id, 42).ok());
  auto found = Find("p");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->copies[0].node_id, a);
  EXPECT_EQ(found->copies[0].offset, pending->location.copies[0].offset);
  EXPECT_EQ(found->version, pending->location.version);
  EXPECT_EQ(found->checksum, 42u);
  ASSERT_TRUE(Reopen().ok());
  MustRegister(kNodeA);  // readable once its node is back
  EXPECT_TRUE(Find("p").ok());
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(Used(), 1 * MiB);
}

// Versions stay unique across restarts even when the newest puts left no
// trace (aborted or expired): the counter itself is persisted.
TEST_F(DirectoryTest, VersionsIncreaseAcrossRestartsAfterAbortsAndExpiry) {
  MustRegister(kNodeA);
  uint64_t committed = Put("c", 4 * KiB, 1);
  uint64_t highest = committed;
  for (int round = 0; round < 3; ++round) {
    std::vector<uint64_t> ids;
    for (int i = 0; i < 5; ++i) {
      auto r = Start("t" + std::to_string(i), 4 * KiB);
      ASSERT_TRUE(r.ok());
      EXPECT_GT(r->location.version, highest);
      highest = r->location.version;
      ids.push_back(r->put_id);
    }
    if (round % 2 == 0) {
      directory_->PutAbort(ids);
    } else {
      Advance(kPutTimeout + absl::Seconds(1));
      directory_->Tick();
    }
    ASSERT_EQ(directory_->Status().pending_puts, 0u);
    ASSERT_TRUE(Reopen().ok());
    // The releases were persisted: nothing comes back.
    EXPECT_EQ(directory_->Status().pending_puts, 0u);
    EXPECT_EQ(Used(), RoundUpToAllocation(4 * KiB));
    ASSERT_TRUE(Register(kNodeA).ok());
  }
  uint64_t next = Put("d", 4 * KiB, 2);
  EXPECT_GT(next, highest);
}

// A registration the directory accepts must not make its catalog unreadable.
// More transports than a record can hold is refused at the door, so a bad
// registration can never leave a catalog the directory cannot reopen.
TEST_F(DirectoryTest, NodeWithTooManyTransportsIsRefusedAndRestartWorks) {
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
TEST_F(DirectoryTest, ANodeNameBelongsToItsIdentity) {
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

TEST_F(DirectoryTest, NodeRecordsAreBounded) {
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
TEST_F(DirectoryTest, NodesGoneForLongAreForgotten) {
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
TEST_F(DirectoryTest, NodesOfAnotherPoolAreRefused) {
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

// Writes stop once the catalog's folder is removed under the directory.
TEST_F(DirectoryTest, ARemovedCatalogFolderStopsWrites) {
  ASSERT_TRUE(directory_->RegisterNode(Claim("n1", "id")).ok());
  ASSERT_TRUE(Start("before", 4096).ok());
  std::filesystem::remove_all(db_path_);
  auto put = Start("after", 4096);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kFailedPrecondition) << put.status();
  EXPECT_NE(put.status().message().find("catalog folder"), std::string::npos) << put.status();
}

}  // namespace
}  // namespace unipool
