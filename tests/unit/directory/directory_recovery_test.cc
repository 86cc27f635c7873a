// The Directory across restarts: everything rebuilt from the catalog,
// reservations still committable, versions that only grow, and a catalog
// folder removed under it. Time is the fixture's fake clock.
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

using DirectoryRecoveryTest = testing::DirectoryFixture;

// ------------------------------------------------------------ recovery

TEST_F(DirectoryRecoveryTest, RecoversEverythingFromTheCatalog) {
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

TEST_F(DirectoryRecoveryTest, RecoveredReservationCanStillBeCommitted) {
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
TEST_F(DirectoryRecoveryTest, VersionsIncreaseAcrossRestartsAfterAbortsAndExpiry) {
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

// Writes stop once the catalog's folder is removed under the directory.
TEST_F(DirectoryRecoveryTest, ARemovedCatalogFolderStopsWrites) {
  ASSERT_TRUE(directory_->RegisterNode(Claim("n1", "id")).ok());
  ASSERT_TRUE(Start("before", 4096).ok());
  std::filesystem::remove_all(db_path_);
  auto put = Start("after", 4096);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kFailedPrecondition) << put.status();
  EXPECT_NE(put.status().message().find("catalog folder"), std::string::npos) << put.status();
}

}  // namespace
}  // namespace unipool
