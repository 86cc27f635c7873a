// The directory's lifecycle state machine (unipool/directory/directory.h,
// lifecycle part): replicas, read leases and held memory, LRU eviction and watermarks, pins, node
// loss, drains and verification of readmitted slabs. A real RocksDB catalog in a temp directory;
// time is a fake clock.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/directory/directory.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr absl::Duration kLease = absl::Seconds(10);

using testing::TestNode;

const TestNode kA{"node-a", 0xa1, 16 * MiB};
const TestNode kB{"node-b", 0xb1, 16 * MiB};
const TestNode kC{"node-c", 0xc1, 16 * MiB};

class LifecycleTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    options.lease = kLease;
    options.high_watermark = high_;
    options.low_watermark = low_;
  }

  NodeId Register(const TestNode& node) {
    NodeRegistration reg;
    reg.name = node.name;
    reg.host = "host-" + node.name;
    reg.data_address = "127.0.0.1:1/" + node.name;
    reg.slab_id = node.slab_id;
    reg.slab_size = node.slab_size;
    auto result = directory_->RegisterNode(reg);
    EXPECT_TRUE(result.ok()) << result.status();
    last_registration_ = result.ok() ? *result : RegistrationResult{};
    return result.ok() ? result->node_id : 0;
  }

  absl::StatusOr<Reservation> Start(std::string_view key, uint64_t length, int replicas = 1,
                                    bool replace = false) {
    PutRequest request{key, length, replace, replicas};
    return directory_->PutStart({&request, 1}).at(0);
  }
  absl::Status Commit(uint64_t put_id, uint64_t checksum, std::vector<NodeId> failed = {}) {
    CommitRequest request{put_id, checksum, std::move(failed)};
    return directory_->PutCommit({&request, 1}).at(0);
  }
  // Put = start + commit; the checksum is the version (tests check it).
  absl::StatusOr<Reservation> Put(std::string_view key, uint64_t length, int replicas = 1,
                                  bool replace = false) {
    auto r = Start(key, length, replicas, replace);
    if (!r.ok()) return r.status();
    if (absl::Status s = Commit(r->put_id, r->location.version); !s.ok()) return s;
    return r;
  }
  void MustPut(std::string_view key, uint64_t length, int replicas = 1) {
    auto r = Put(key, length, replicas);
    ASSERT_TRUE(r.ok()) << key << ": " << r.status();
  }
  absl::StatusOr<ObjectInfo> Lookup(std::string_view key) {
    return directory_->Lookup({&key, 1}).at(0);
  }
  bool Exists(std::string_view key) { return directory_->Exists({&key, 1}).at(0); }
  absl::Status Remove(std::string_view key) { return directory_->Remove({&key, 1}).at(0); }
  // Whether the directory still has the object, without leasing it.
  bool Has(std::string_view key) { return !HoldersOf(key).empty(); }
  // Names of the nodes holding the object, without leasing it.
  std::set<std::string> HoldersOf(std::string_view key) {
    for (const auto& e : directory_->List(key, "", 1).entries) {
      if (e.key == key) return std::set<std::string>(e.nodes.begin(), e.nodes.end());
    }
    return {};
  }
  NodeState StatusOf(NodeId id) {
    for (const NodeState& n : directory_->Status().nodes) {
      if (n.node_id == id) return n;
    }
    ADD_FAILURE() << "no node " << id;
    return {};
  }
  // Every node beats, so that Tick does not mark them down.
  void BeatAll(std::initializer_list<TestNode> nodes) {
    for (const TestNode& n : nodes) {
      for (const NodeState& s : directory_->Status().nodes) {
        if (s.name == n.name) {
          ASSERT_TRUE(directory_->Heartbeat(s.node_id, n.slab_id, {}).ok());
        }
      }
    }
  }

  double high_ = 0.90;
  double low_ = 0.80;
  RegistrationResult last_registration_;
};

std::set<NodeId> NodesOf(const ObjectInfo& l) {
  std::set<NodeId> nodes;
  for (const CopyLocation& c : l.copies) nodes.insert(c.node_id);
  return nodes;
}

// ------------------------------------------------------------ replicas

TEST_F(LifecycleTest, ReplicasGoToDistinctNodes) {
  NodeId a = Register(kA), b = Register(kB), c = Register(kC);
  auto r = Start("w", 1 * MiB, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(NodesOf(r->location), (std::set<NodeId>{a, b, c}));
  ASSERT_TRUE(Commit(r->put_id, 9).ok());
  auto found = Lookup("w");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(NodesOf(*found), (std::set<NodeId>{a, b, c}));
  EXPECT_EQ(found->copies.size(), 3u);
  EXPECT_EQ(found->lease, kLease);
  PoolState status = directory_->Status();
  EXPECT_EQ(status.objects, 1u);
  EXPECT_EQ(status.used, 3 * MiB);
  for (const NodeState& n : status.nodes) EXPECT_EQ(n.objects, 1u) << n.name;

  // More copies than nodes: Unavailable (retry when nodes come back).
  EXPECT_EQ(Start("x", 4 * KiB, 4).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Start("x", 4 * KiB, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);

  // Durable: a restart keeps every copy.
  ASSERT_TRUE(Reopen().ok());
  for (const TestNode& n : {kA, kB, kC}) Register(n);
  found = Lookup("w");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(NodesOf(*found), (std::set<NodeId>{a, b, c}));
  EXPECT_EQ(directory_->Status().used, 3 * MiB);
}

TEST_F(LifecycleTest, CommitWithoutTheCopiesThatFailed) {
  NodeId a = Register(kA), b = Register(kB);
  auto r = Start("k", 1 * MiB, 2);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(Commit(r->put_id, 5, {b}).ok());
  auto found = Lookup("k");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(NodesOf(*found), (std::set<NodeId>{a}));
  EXPECT_EQ(StatusOf(b).used, 0u) << "the failed copy's space is free";
  // No copy written: refused, and the reservation is gone.
  auto none = Start("n", 1 * MiB, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(Commit(none->put_id, 5, {a, b}).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(directory_->Status().used, 1 * MiB);
}

// ------------------------------------------------------------ leases

TEST_F(LifecycleTest, RemovedLeasedObjectKeepsItsMemoryUntilTheLeaseEnds) {
  NodeId a = Register(kA);
  auto put = Put("page", 1 * MiB);
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE(Lookup("page").ok());  // leases it
  ASSERT_TRUE(Remove("page").ok());
  EXPECT_FALSE(Exists("page"));
  EXPECT_EQ(StatusOf(a).used, 1 * MiB) << "held for the reader's lease";
  EXPECT_EQ(directory_->Status().held, 1 * MiB);
  // A new object of the same size must not land on the held bytes.
  auto next = Start("next", 1 * MiB);
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->location.copies[0].offset, put->location.copies[0].offset);
  directory_->PutAbort({&next->put_id, 1});

  // The hold is durable: a restarted directory keeps it until the lease end.
  ASSERT_TRUE(Reopen().ok());
  Register(kA);
  EXPECT_EQ(StatusOf(a).used, 1 * MiB);
  Advance(kLease - absl::Seconds(1));
  BeatAll({kA});
  directory_->Tick();
  EXPECT_EQ(StatusOf(a).used, 1 * MiB);
  Advance(absl::Seconds(2));
  BeatAll({kA});
  directory_->Tick();
  EXPECT_EQ(StatusOf(a).used, 0u);
  EXPECT_EQ(directory_->Status().held, 0u);
  // Now the same memory is handed out again.
  auto reuse = Start("reuse", 1 * MiB);
  ASSERT_TRUE(reuse.ok());
  EXPECT_EQ(reuse->location.copies[0].offset, put->location.copies[0].offset);
}

TEST_F(LifecycleTest, UnleasedRemoveFreesAtOnce) {
  NodeId a = Register(kA);
  MustPut("page", 1 * MiB);  // never looked up: no lease
  ASSERT_TRUE(Remove("page").ok());
  EXPECT_EQ(StatusOf(a).used, 0u);
}

TEST_F(LifecycleTest, ReplacedLeasedObjectIsHeldToo) {
  NodeId a = Register(kA);
  MustPut("k", 1 * MiB);
  ASSERT_TRUE(Lookup("k").ok());
  auto second = Put("k", 1 * MiB, 1, /*replace=*/true);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(StatusOf(a).used, 2 * MiB);
  EXPECT_EQ(Lookup("k")->version, second->location.version);
  Advance(kLease + absl::Seconds(1));
  BeatAll({kA});
  directory_->Tick();
  EXPECT_EQ(StatusOf(a).used, 1 * MiB);
}

TEST_F(LifecycleTest, LeaseCountsAreReported) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  MustPut("x", 4 * KiB, 2);
  MustPut("y", 4 * KiB);
  EXPECT_EQ(directory_->Status().leased, 0u);
  ASSERT_TRUE(Lookup("x").ok());
  PoolState status = directory_->Status();
  EXPECT_EQ(status.leased, 1u);
  EXPECT_EQ(StatusOf(a).leased + StatusOf(b).leased, 2u);
  Advance(kLease + absl::Milliseconds(1));
  EXPECT_EQ(directory_->Status().leased, 0u);
}

// ------------------------------------------------------------ eviction

TEST_F(LifecycleTest, PutEvictsTheLeastRecentlyUsedInsteadOfFailing) {
  high_ = low_ = 1.0;  // no background eviction: only what puts need
  ASSERT_TRUE(Reopen().ok());
  Register(kA);  // 16 MiB
  for (int i = 0; i < 16; ++i) MustPut("old-" + std::to_string(i), 1 * MiB);
  EXPECT_EQ(directory_->Status().used, 16 * MiB);
  // old-0 was used recently (its lease ends, its recency stays).
  ASSERT_TRUE(Lookup("old-0").ok());
  Advance(kLease + absl::Seconds(1));
  auto r = Put("new", 2 * MiB);
  ASSERT_TRUE(r.ok()) << r.status();
  // The two least recently used went: old-1 and old-2 (adjacent, so their
  // space coalesced into one 2 MiB piece).
  EXPECT_TRUE(Has("old-0"));
  EXPECT_FALSE(Has("old-1"));
  EXPECT_FALSE(Has("old-2"));
  EXPECT_TRUE(Has("old-3"));
  PoolState status = directory_->Status();
  EXPECT_EQ(status.evictions, 2u);
  EXPECT_EQ(status.nodes.at(0).evictions, 2u);
  EXPECT_EQ(status.objects, 15u);
  EXPECT_EQ(status.used, 16 * MiB);
}

// Lookups take the directory's lock shared: leases are extended with an
// atomic and recency touches are queued, then applied by the next exclusive
// section. Four threads looking up half the objects (while another asks
// for the status, which takes the lock exclusively) must leave those objects
// leased and, once the leases end, the most recently used.
TEST_F(LifecycleTest, ConcurrentLookupsLeaseAndRenewRecencyAsSerialOnesDo) {
  high_ = low_ = 1.0;
  ASSERT_TRUE(Reopen().ok());
  Register(kA);  // 16 MiB
  for (int i = 0; i < 16; ++i) MustPut("a" + std::to_string(i), 1 * MiB);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        std::string key = "a" + std::to_string((round + t) % 8);
        std::string_view view = key;
        if (!directory_->Lookup({&view, 1}).at(0).ok()) failures++;
      }
    });
  }
  threads.emplace_back([&] {
    for (int round = 0; round < 50; ++round) {
      if (directory_->Status().objects != 16) failures++;
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(directory_->Status().leased, 8u);
  // Leased: a put needing room takes only unleased objects, coldest first.
  ASSERT_TRUE(Put("b0", 2 * MiB).ok());
  EXPECT_FALSE(Has("a8"));
  EXPECT_FALSE(Has("a9"));
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(Has("a" + std::to_string(i))) << i;
  // Unleased, a0..a7 are still hotter than a10..a15: those go first.
  Advance(kLease + absl::Seconds(1));
  ASSERT_TRUE(Put("b1", 6 * MiB).ok());
  for (int i = 10; i < 16; ++i) EXPECT_FALSE(Has("a" + std::to_string(i))) << i;
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(Has("a" + std::to_string(i))) << i;
  EXPECT_EQ(directory_->Status().evictions, 8u);
}

TEST_F(LifecycleTest, PoolIsFullOnlyWhenEverythingLeftIsPinnedOrLeased) {
  high_ = low_ = 1.0;
  ASSERT_TRUE(Reopen().ok());
  Register(kA);
  for (int i = 0; i < 8; ++i) MustPut("pinned/" + std::to_string(i), 1 * MiB);
  for (int i = 0; i < 8; ++i) MustPut("leased/" + std::to_string(i), 1 * MiB);
  ASSERT_TRUE(directory_->Pin("pinned/", /*prefix=*/true).ok());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Lookup("leased/" + std::to_string(i)).ok());
  auto full = Start("one-more", 1 * MiB);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("pool full"), std::string_view::npos) << full.status();
  EXPECT_EQ(directory_->Status().evictions, 0u);
  // Leases end: the leased objects become evictable, the pinned never.
  Advance(kLease + absl::Seconds(1));
  for (int i = 0; i < 8; ++i) {
    auto r = Put("more/" + std::to_string(i), 1 * MiB);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(Has("pinned/" + std::to_string(i)));
    EXPECT_FALSE(Has("leased/" + std::to_string(i)));
  }
  EXPECT_EQ(directory_->Status().pinned, 8u);
  EXPECT_EQ(Start("again", 1 * MiB).status().code(), absl::StatusCode::kOk);
}

TEST_F(LifecycleTest, TickEvictsFromTheHighWatermarkDownToTheLow) {
  NodeId a = Register(kA);  // 16 MiB: high 14.4 MiB, low 12.8 MiB
  NodeId b = Register(kB);
  // Fill A only: B is draining meanwhile, so it takes nothing.
  ASSERT_TRUE(directory_->Drain(kB.name, false).ok());
  for (int i = 0; i < 15; ++i) MustPut("k" + std::to_string(i), 1 * MiB);
  ASSERT_TRUE(directory_->Drain(kB.name, true).ok());
  ASSERT_TRUE(directory_->Pin("k0", false).ok());
  EXPECT_EQ(StatusOf(a).used, 15 * MiB);
  BeatAll({kA, kB});
  directory_->Tick();
  EXPECT_EQ(StatusOf(a).used, 12 * MiB);
  EXPECT_EQ(StatusOf(a).evictions, 3u);
  EXPECT_TRUE(Has("k0")) << "pinned, though the coldest";
  EXPECT_FALSE(Has("k1"));
  EXPECT_FALSE(Has("k3"));
  EXPECT_TRUE(Has("k4"));
  EXPECT_EQ(StatusOf(b).used, 0u);
}

TEST_F(LifecycleTest, EvictByPrefixSkipsPinnedAndLeased) {
  Register(kA);
  for (const char* key : {"kv/1", "kv/2", "kv/3", "weights/1"}) MustPut(key, 64 * KiB);
  ASSERT_TRUE(directory_->Pin("kv/1", false).ok());
  ASSERT_TRUE(Lookup("kv/2").ok());
  auto evicted = directory_->Evict("kv/");
  ASSERT_TRUE(evicted.ok());
  EXPECT_EQ(*evicted, 1u);
  EXPECT_TRUE(Has("kv/1"));
  EXPECT_TRUE(Has("kv/2"));
  EXPECT_FALSE(Has("kv/3"));
  EXPECT_TRUE(Has("weights/1"));
  EXPECT_EQ(*directory_->Evict(""), 1u);  // weights/1
}

TEST_F(LifecycleTest, EveryObjectCountsAsLeasedForOneLeaseAfterARestart) {
  high_ = low_ = 1.0;
  ASSERT_TRUE(Reopen().ok());
  Register(kA);
  for (int i = 0; i < 16; ++i) MustPut("k" + std::to_string(i), 1 * MiB);
  ASSERT_TRUE(Reopen().ok());
  Register(kA);
  EXPECT_EQ(Start("new", 1 * MiB).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(directory_->Status().leased, 16u);
  Advance(kLease + absl::Seconds(1));
  EXPECT_TRUE(Start("new", 1 * MiB).ok());
}

// ------------------------------------------------------------ pins

TEST_F(LifecycleTest, PinsByKeyAndPrefixAreDurableAndCoverFutureKeys) {
  NodeId a = Register(kA);
  ASSERT_TRUE(directory_->Pin("llama/weights/", true).ok());
  ASSERT_TRUE(directory_->Pin("prompt:42", false).ok());
  MustPut("llama/weights/0", 64 * KiB);
  MustPut("llama/weights/1", 64 * KiB);
  MustPut("prompt:42", 64 * KiB);
  MustPut("prompt:43", 64 * KiB);
  EXPECT_EQ(directory_->Status().pinned, 3u);
  EXPECT_EQ(StatusOf(a).pinned, 3u);
  ASSERT_TRUE(Reopen().ok());
  Register(kA);
  EXPECT_EQ(directory_->Status().pinned, 3u);
  Advance(kLease + absl::Seconds(1));     // past the restart's leases
  EXPECT_EQ(*directory_->Evict(""), 1u);  // prompt:43
  // Unpinning a prefix leaves keys pinned by their own pin.
  ASSERT_TRUE(directory_->Pin("llama/weights/0", false).ok());
  ASSERT_TRUE(directory_->Unpin("llama/weights/", true).ok());
  EXPECT_EQ(directory_->Status().pinned, 2u);
  EXPECT_EQ(directory_->Unpin("llama/weights/", true).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(directory_->Unpin("prompt:42", true).code(), absl::StatusCode::kNotFound)
      << "a key pin is not a prefix pin";
  EXPECT_EQ(*directory_->Evict(""), 1u);  // llama/weights/1
  EXPECT_TRUE(Has("llama/weights/0"));
  EXPECT_EQ(directory_->Pin("", true).code(), absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------ node loss

TEST_F(LifecycleTest, DownNodeObjectsWithALiveReplicaStayAndOthersAreGone) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  MustPut("both", 1 * MiB, 2);
  // One copy on A only: B drains while it is put.
  ASSERT_TRUE(directory_->Drain(kB.name, false).ok());
  MustPut("only-a", 1 * MiB);
  ASSERT_TRUE(directory_->Drain(kB.name, true).ok());
  ASSERT_EQ(HoldersOf("only-a"), std::set<std::string>{kA.name});

  Advance(kNodeTimeout + absl::Seconds(1));
  BeatAll({kB});
  directory_->Tick();
  ASSERT_FALSE(StatusOf(a).up);
  EXPECT_TRUE(Exists("both"));
  EXPECT_FALSE(Exists("only-a"));
  auto both = Lookup("both");
  ASSERT_TRUE(both.ok());
  int up = 0;
  for (const CopyLocation& c : both->copies) up += c.node_up ? 1 : 0;
  EXPECT_EQ(up, 1);
  // The unreadable key may be put again (it lands on B) without replace.
  auto again = Put("only-a", 2 * MiB);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->location.copies[0].node_id, b);
  EXPECT_EQ(StatusOf(a).used, 1 * MiB) << "the old copy's space on A is free again";
  // A comes back with its slab: the new object stays the one seen.
  Register(kA);
  EXPECT_TRUE(last_registration_.readmitted);
  EXPECT_EQ(Lookup("only-a")->version, again->location.version);
  EXPECT_EQ(Lookup("only-a")->copies[0].node_id, b);
}

TEST_F(LifecycleTest, NewSlabDropsCopiesButObjectsWithAnotherCopySurvive) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  MustPut("both", 1 * MiB, 2);
  ASSERT_TRUE(directory_->Drain(kB.name, false).ok());
  MustPut("only-a", 1 * MiB);
  ASSERT_TRUE(directory_->Drain(kB.name, true).ok());
  TestNode fresh = kA;
  fresh.slab_id = 0xa2;
  Register(fresh);
  EXPECT_FALSE(last_registration_.readmitted);
  EXPECT_EQ(last_registration_.objects_dropped, 1u);
  EXPECT_FALSE(Has("only-a"));
  auto both = Lookup("both");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(NodesOf(*both), (std::set<NodeId>{b}));
  EXPECT_EQ(StatusOf(a).used, 0u);
  EXPECT_EQ(StatusOf(a).objects, 0u);
  ASSERT_TRUE(Reopen().ok());
  Register(kB);  // readable once its node is back
  EXPECT_EQ(NodesOf(*Lookup("both")), (std::set<NodeId>{b}));
}

TEST_F(LifecycleTest, ReadmittedSlabIsVerifiedAndBadCopiesDropped) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  MustPut("good", 64 * KiB, 2);
  MustPut("bad-with-replica", 64 * KiB, 2);
  ASSERT_TRUE(directory_->Drain(kB.name, false).ok());
  MustPut("bad-alone", 64 * KiB);
  ASSERT_TRUE(directory_->Drain(kB.name, true).ok());
  EXPECT_FALSE(directory_->PlanVerification().has_value()) << "fresh nodes need no check";

  Register(kA);  // back with the same slab
  ASSERT_TRUE(last_registration_.readmitted);
  std::optional<VerifyPlan> plan = directory_->PlanVerification();
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->node_id, a);
  EXPECT_EQ(plan->items.size(), 3u);
  EXPECT_FALSE(directory_->PlanVerification().has_value()) << "one plan at a time";
  std::vector<VerifyItem> bad;
  for (const VerifyItem& item : plan->items) {
    if (item.key.starts_with("bad")) bad.push_back(item);
  }
  // A failed attempt leaves it to be planned again.
  directory_->FinishVerification(*plan, absl::UnavailableError("node went away"), {});
  plan = directory_->PlanVerification();
  ASSERT_TRUE(plan.has_value());
  directory_->FinishVerification(*plan, absl::OkStatus(), bad);
  EXPECT_FALSE(directory_->PlanVerification().has_value());
  EXPECT_EQ(NodesOf(*Lookup("good")), (std::set<NodeId>{a, b}));
  EXPECT_EQ(NodesOf(*Lookup("bad-with-replica")), (std::set<NodeId>{b}));
  EXPECT_FALSE(Has("bad-alone"));
  EXPECT_EQ(StatusOf(a).objects, 1u);
  EXPECT_EQ(StatusOf(a).used, 64 * KiB);
}

TEST_F(LifecycleTest, ACopyThatFailedItsChecksumIsMadeAgain) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  MustPut("page", 64 * KiB, 2);
  Register(kA);  // back with the same slab
  std::optional<VerifyPlan> plan = directory_->PlanVerification();
  ASSERT_TRUE(plan.has_value());
  ASSERT_EQ(plan->items.size(), 1u);
  directory_->FinishVerification(*plan, absl::OkStatus(), plan->items);
  EXPECT_EQ(NodesOf(*Lookup("page")), (std::set<NodeId>{b}));
  EXPECT_EQ(directory_->Status().under_replicated, 1u);

  // Read from the good copy into fresh space (a's bad bytes were freed).
  std::vector<MovePlan> plans = directory_->PlanMoves(10);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].key, "page");
  EXPECT_TRUE(plans[0].new_copy);
  EXPECT_EQ(plans[0].source_node, b);
  EXPECT_EQ(plans[0].target_node, a);
  // A failed copy is planned again.
  directory_->FinishMove(plans[0], /*copied=*/false);
  plans = directory_->PlanMoves(10);
  ASSERT_EQ(plans.size(), 1u);
  directory_->FinishMove(plans[0], /*copied=*/true);
  EXPECT_EQ(NodesOf(*Lookup("page")), (std::set<NodeId>{a, b}));
  EXPECT_EQ(directory_->Status().under_replicated, 0u);
  EXPECT_EQ(directory_->Status().copies_rereplicated, 1u);
  EXPECT_TRUE(directory_->PlanMoves(10).empty());
}

// ------------------------------------------------------------ drain

TEST_F(LifecycleTest, DrainMovesEveryCopyOffAndReportsDone) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  NodeId c = Register(kC);
  for (int i = 0; i < 12; ++i) MustPut("k" + std::to_string(i), 256 * KiB, i % 3 == 0 ? 2 : 1);
  ASSERT_TRUE(directory_->Pin("k1", false).ok());
  // Leased: the drained copies are held after their moves until it ends.
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(Lookup("k" + std::to_string(i)).ok());
  uint64_t on_a = StatusOf(a).objects;
  ASSERT_GT(on_a, 0u);
  PoolState before = directory_->Status();

  auto progress = directory_->Drain(kA.name, false);
  ASSERT_TRUE(progress.ok());
  EXPECT_TRUE(progress->draining);
  EXPECT_FALSE(progress->done);
  EXPECT_EQ(progress->objects, on_a);
  EXPECT_EQ(Start("new", 4 * KiB, 3).status().code(), absl::StatusCode::kUnavailable)
      << "a draining node takes no new objects";

  std::vector<MovePlan> plans = directory_->PlanMoves(100);
  ASSERT_EQ(plans.size(), on_a);
  for (const MovePlan& plan : plans) {
    EXPECT_EQ(plan.from_node, a);
    EXPECT_EQ(plan.source_node, a) << "read from the drained node while it is up";
    EXPECT_NE(plan.target_node, a);
    auto where = Lookup(plan.key);
    ASSERT_TRUE(where.ok());
    EXPECT_EQ(NodesOf(*where).count(plan.target_node), 0u) << "never two copies on a node";
  }
  EXPECT_TRUE(directory_->PlanMoves(100).empty()) << "each copy is planned once";
  EXPECT_EQ(directory_->Drain(kA.name, false)->moves_in_flight, on_a);
  // The first move fails (node unreachable): it is planned again.
  directory_->FinishMove(plans[0], /*copied=*/false);
  std::vector<MovePlan> retry = directory_->PlanMoves(100);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].key, plans[0].key);
  plans[0] = retry[0];
  for (const MovePlan& plan : plans) directory_->FinishMove(plan, /*copied=*/true);

  for (int i = 0; i < 12; ++i) {
    auto where = Lookup("k" + std::to_string(i));
    ASSERT_TRUE(where.ok());
    EXPECT_EQ(NodesOf(*where).count(a), 0u);
    EXPECT_EQ(NodesOf(*where).size(), i % 3 == 0 ? 2u : 1u);
  }
  progress = directory_->Drain(kA.name, false);
  EXPECT_EQ(progress->objects, 0u);
  // The old copies are held until the lease ends.
  EXPECT_FALSE(progress->done);
  EXPECT_EQ(progress->used, on_a * 256 * KiB);
  Advance(kLease + absl::Seconds(1));
  BeatAll({kA, kB, kC});
  directory_->Tick();
  progress = directory_->Drain(kA.name, false);
  EXPECT_TRUE(progress->done);
  EXPECT_EQ(progress->used, 0u);
  EXPECT_TRUE(progress->blocked.ok()) << progress->blocked;

  PoolState after = directory_->Status();
  EXPECT_EQ(after.objects, before.objects);
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.pinned, 1u);
  EXPECT_EQ(StatusOf(b).objects + StatusOf(c).objects,
            before.nodes[0].objects + before.nodes[1].objects + before.nodes[2].objects);
  // Durable: a restart sees the moved copies and the draining flag.
  ASSERT_TRUE(Reopen().ok());
  for (const TestNode& n : {kA, kB, kC}) Register(n);
  EXPECT_TRUE(StatusOf(a).draining);
  EXPECT_EQ(StatusOf(a).used, 0u);
  ASSERT_TRUE(directory_->Drain(kA.name, true).ok());
  EXPECT_FALSE(StatusOf(a).draining);
}

TEST_F(LifecycleTest, MoveOfAnObjectChangedMeanwhileIsDropped) {
  NodeId a = Register(kA);
  Register(kB);
  ASSERT_TRUE(directory_->Drain(kB.name, false).ok());
  MustPut("gone", 64 * KiB);
  MustPut("replaced", 64 * KiB);
  ASSERT_TRUE(directory_->Drain(kB.name, true).ok());
  ASSERT_TRUE(directory_->Drain(kA.name, false).ok());
  std::vector<MovePlan> plans = directory_->PlanMoves(10);
  ASSERT_EQ(plans.size(), 2u);
  ASSERT_TRUE(Remove("gone").ok());
  auto newer = Put("replaced", 64 * KiB, 1, /*replace=*/true);
  ASSERT_TRUE(newer.ok());
  for (const MovePlan& plan : plans) directory_->FinishMove(plan, true);
  EXPECT_FALSE(Has("gone"));
  EXPECT_EQ(Lookup("replaced")->version, newer->location.version);
  // Only the new object's bytes are allocated (the moves' targets are free).
  EXPECT_EQ(directory_->Status().used, 64 * KiB);
  EXPECT_EQ(StatusOf(a).used, 0u);
}

TEST_F(LifecycleTest, DrainWithoutRoomElsewhereIsBlockedNotLossy) {
  high_ = low_ = 1.0;
  ASSERT_TRUE(Reopen().ok());
  Register(kA);
  TestNode small{"small", 0x51, 1 * MiB};
  Register(small);
  ASSERT_TRUE(directory_->Drain(small.name, false).ok());
  MustPut("big", 2 * MiB);
  ASSERT_TRUE(directory_->Drain(small.name, true).ok());
  ASSERT_TRUE(directory_->Pin("big", false).ok());
  ASSERT_TRUE(directory_->Drain(kA.name, false).ok());
  EXPECT_TRUE(directory_->PlanMoves(10).empty());
  auto progress = directory_->Drain(kA.name, false);
  EXPECT_FALSE(progress->done);
  EXPECT_EQ(progress->blocked.code(), absl::StatusCode::kResourceExhausted) << progress->blocked;
  EXPECT_TRUE(Has("big"));
  EXPECT_EQ(directory_->Drain("no-such-node", false).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LifecycleTest, DrainOfADownNodeCopiesFromALiveReplica) {
  NodeId a = Register(kA);
  NodeId b = Register(kB);
  NodeId c = Register(kC);
  MustPut("r", 64 * KiB, 2);
  auto where = Lookup("r");
  ASSERT_TRUE(where.ok());
  NodeId lost = where->copies[0].node_id;
  const TestNode& lost_node = lost == a ? kA : lost == b ? kB : kC;
  Advance(kNodeTimeout + absl::Seconds(1));
  for (const TestNode& n : {kA, kB, kC}) {
    if (n.name != lost_node.name) BeatAll({n});
  }
  directory_->Tick();
  ASSERT_FALSE(StatusOf(lost).up);
  ASSERT_TRUE(directory_->Drain(lost_node.name, false).ok());
  std::vector<MovePlan> plans = directory_->PlanMoves(10);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].from_node, lost);
  EXPECT_NE(plans[0].source_node, lost);
  EXPECT_NE(plans[0].target_node, lost);
  EXPECT_NE(plans[0].target_node, plans[0].source_node);
  directory_->FinishMove(plans[0], true);
  EXPECT_EQ(NodesOf(*Lookup("r")).count(lost), 0u);
  EXPECT_EQ(NodesOf(*Lookup("r")).size(), 2u);
  (void)c;
}

// ------------------------------------------------------------ records

// The lifecycle's record formats round-trip, and damage is DataLoss.
TEST(LifecycleRecordsTest, NewFormatsRoundTripAndRejectDamage) {
  ObjectRecord object;
  object.copies = {{1, 4096}, {2, 8192}, {3, 0}};
  object.length = 5000;
  object.version = 7;
  object.checksum = 0xabcdef;
  object.created_unix_ms = 123;
  std::string encoded = EncodeObject(object);
  auto decoded = DecodeObject(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(CopiesOf(*decoded), CopiesOf(object));
  EXPECT_EQ(decoded->checksum, object.checksum);
  ObjectRecord single = object;
  single.copies.resize(1);
  EXPECT_EQ(EncodeObject(single)[0], 1) << "single-copy objects keep format 1";
  EXPECT_EQ(encoded[0], 2);

  PendingPut pending;
  pending.put_id = 9;
  pending.key = "k";
  pending.copies = {{1, 0}, {4, 4096}};
  pending.length = 10;
  auto p = DecodePendingPut(EncodePendingPut(pending));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(CopiesOf(*p), CopiesOf(pending));

  NodeRecord node;
  node.node_id = 3;
  node.name = "mac3";
  node.transports = {"tcp"};
  node.draining = true;
  auto n = DecodeNode(EncodeNode(node));
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->draining);
  EXPECT_EQ(n->transports, node.transports);
  node.draining = false;
  EXPECT_FALSE(DecodeNode(EncodeNode(node))->draining);

  auto pin = DecodePin(EncodePin({"llama/", true}));
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ(pin->key, "llama/");
  EXPECT_TRUE(pin->prefix);

  HeldExtent held{11, 2, 8192, 4096, 1'764'064'800'000};
  auto h = DecodeHeldExtent(EncodeHeldExtent(held));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->id, 11u);
  EXPECT_EQ(h->until_unix_ms, held.until_unix_ms);

  for (const std::string& valid :
       {encoded, EncodePendingPut(pending), EncodePin({"x", false}), EncodeHeldExtent(held)}) {
    for (size_t cut = 0; cut < valid.size(); ++cut) {
      std::string_view prefix = std::string_view(valid).substr(0, cut);
      for (absl::Status st : {DecodeObject(prefix).status(), DecodePendingPut(prefix).status(),
                              DecodePin(prefix).status(), DecodeHeldExtent(prefix).status()}) {
        EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
      }
    }
  }
}

}  // namespace
}  // namespace unipool
