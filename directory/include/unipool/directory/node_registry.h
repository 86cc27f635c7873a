// The directory's nodes: who they are (records, identity claims, the pool
// they belong to), their slabs' allocations, their liveness, and the wait
// for nodes known from the catalog after a restart. Admission rules:
//   - a registration's fields stay within the bounds of records.h;
//   - a node of another pool is refused (its --db was lost or replaced);
//   - a name held by a node with an identity is only taken again with the
//     same identity;
//   - at most kMaxNodes nodes.
// Heartbeat arrival times are kept apart (HeartbeatTimes, its own lock):
// the directory's lock may be held for a while (an eviction sweep, a drain
// scan), and a busy directory must never mistake its own delay in reading a
// heartbeat for a node's silence.
//
// Thread safety: NodeRegistry is not thread-safe (the directory guards it
// with its lock); HeartbeatTimes is.
#ifndef UNIPOOL_DIRECTORY_NODE_REGISTRY_H_
#define UNIPOOL_DIRECTORY_NODE_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/directory/allocator.h"
#include "unipool/directory/catalog.h"
#include "unipool/directory/directory_types.h"
#include "unipool/directory/node_health.h"
#include "unipool/directory/records.h"
#include "unipool/pool_types.h"

namespace unipool {

// A node as the directory knows it: its durable record, its slab's
// allocations, its liveness and the counts shown in status.
struct NodeEntry {
  NodeEntry(const NodeRecord& known, absl::Time down_since)
      : record(known), allocator(known.slab_size), health(down_since) {}

  NodeRecord record;
  SlabAllocator allocator;
  NodeHealth health;
  bool up() const { return health.up(); }
  bool taking_objects() const { return up() && !record.draining; }
  bool huge_pages = false;
  std::vector<RdmaPortInfo> rdma_ports;  // shown to operators, not persisted
  bool registered_since_start = false;   // by this directory process
  uint64_t objects = 0;                  // copies on it
  NodeCounters counters;
  uint64_t pinned = 0;          // copies of pinned objects
  uint64_t evictions = 0;       // copies evicted since start
  uint64_t held_bytes = 0;      // allocated to held extents
  uint64_t flash_capacity = 0;  // its flash tier, as registered; 0: none
  FlashTierState flash;         // flash copies on it, and their moves
};

// InvalidArgument, with the field named, when a registration's record would
// pass the bounds of records.h.
absl::Status ValidateRegistration(const NodeRegistration& registration);

// When each node was last heard from.
class HeartbeatTimes {
 public:
  // Records a beat; with `only_if_known`, ignores ids never recorded (a
  // made-up id must not grow the map).
  void Note(NodeId id, absl::Time when, bool only_if_known) ABSL_LOCKS_EXCLUDED(mu_);
  // InfinitePast for a node never heard from.
  absl::Time LastHeard(NodeId id) const ABSL_LOCKS_EXCLUDED(mu_);
  void Forget(NodeId id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<NodeId, absl::Time> last_heard_ ABSL_GUARDED_BY(mu_);
};

class NodeRegistry {
 public:
  using Map = absl::flat_hash_map<NodeId, std::unique_ptr<NodeEntry>>;

  size_t size() const { return nodes_.size(); }
  Map::iterator begin() { return nodes_.begin(); }
  Map::iterator end() { return nodes_.end(); }
  Map::const_iterator begin() const { return nodes_.begin(); }
  Map::const_iterator end() const { return nodes_.end(); }

  NodeEntry* Find(NodeId id) const;
  // By name or data address (what operators type).
  NodeEntry* FindByNameOrAddress(std::string_view name) const;
  bool IsUp(NodeId id) const;

  // A node known from the catalog: down (since `now`) until it registers
  // again.
  NodeEntry& Restore(const NodeRecord& record, absl::Time now);
  // Which node `registration` claims: the one of that name, or nullptr for
  // a new node. FailedPrecondition for a node of a pool other than
  // `pool_id` or a name held by another identity; ResourceExhausted past
  // kMaxNodes.
  absl::StatusOr<NodeEntry*> Claim(const NodeRegistration& registration,
                                   std::string_view pool_id) const;
  // A new node with the next id and an empty slab of `slab_size`.
  NodeEntry& Add(uint64_t slab_size, absl::Time now);
  void Erase(NodeId id);

  // Bytes of every live node's slab (what client quotas are shares of).
  uint64_t LiveCapacity() const;
  // Nodes that are up and not draining.
  int TakingObjects() const;

  // After a restart, until `until` (real time), puts and lookups that need
  // a node known from the catalog but not registered again may wait for it.
  void AwaitRestartedUntil(absl::Time until) { restart_wait_until_ = until; }
  absl::Time restart_wait_until() const { return restart_wait_until_; }
  // Some node known from the catalog has not registered since the start,
  // and the wait has not run out by `now`.
  bool AwaitingRestarted(absl::Time now) const;

  // Logs a node's state change in one line and counts it.
  void LogTransition(const NodeEntry& node, const std::optional<Transition>& t);
  // State changes so far (the under-replicated count is redone after one).
  uint64_t liveness_changes() const { return liveness_changes_; }

 private:
  Map nodes_;
  NodeId next_node_id_ = 1;
  absl::Time restart_wait_until_ = absl::InfinitePast();
  uint64_t liveness_changes_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_NODE_REGISTRY_H_
