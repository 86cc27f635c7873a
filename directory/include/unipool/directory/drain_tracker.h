// Drain bookkeeping: for each draining node, the keys with a copy there still
// to plan, the moves out and why the drain is stuck; for the pool, which keys
// are being moved. The directory decides what a move is (it owns the map and
// the allocators); the tracker decides what to move next and remembers it.
//
// Thread safety: not thread-safe; the directory guards it with its mutex.
#ifndef UNIPOOL_DIRECTORY_DRAIN_TRACKER_H_
#define UNIPOOL_DIRECTORY_DRAIN_TRACKER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "unipool/common/string_map.h"
#include "unipool/directory/records.h"

namespace unipool {

// The copy a move of node `from`'s copy reads: that copy itself while its node
// is up, else the first copy on a live node. nullopt when no copy is on a live
// node (the drain is stuck on this object until one comes back).
std::optional<ObjectCopy> ChooseMoveSource(std::span<const ObjectCopy> copies, NodeId from,
                                           absl::FunctionRef<bool(NodeId)> node_up);

class DrainTracker {
 public:
  // Node `node` starts draining with `keys` to move (replacing any earlier
  // queue), or stops draining.
  void Begin(NodeId node, std::vector<std::string> keys);
  void End(NodeId node);
  // Empties `node`'s queue (its copies are gone with its slab).
  void DropQueue(NodeId node);
  // Appends a key to move off `node` (committed there while it drains, or a
  // failed move to try again).
  void Queue(NodeId node, std::string key);
  // Puts back a key that could not be planned now, to be tried first.
  void QueueFirst(NodeId node, std::string key);
  // The next queued key of `node` that is not being moved already.
  std::optional<std::string> Next(NodeId node);

  // True when `node`'s queue ran dry while it still has copies not being
  // moved (`copies` on it), and no rescan happened in the last second: the
  // caller then queues every copy it finds there (committed late, failed
  // moves). Starts the next rescan interval.
  bool RescanDue(NodeId node, uint64_t copies, int64_t now_ms);

  bool IsMoving(std::string_view key) const { return moving_.contains(key); }
  void MoveStarted(NodeId from, std::string key, uint64_t move_id);
  // Forgets move `move_id` of `key` off `from` (finished, failed or undone).
  void MoveEnded(NodeId from, std::string_view key, uint64_t move_id);
  uint64_t MovesInFlight(NodeId node) const;

  // Why `node`'s drain cannot finish now (OK while it progresses).
  void SetBlocked(NodeId node, absl::Status reason);
  absl::Status Blocked(NodeId node) const;

 private:
  struct NodeDrain {
    std::deque<std::string> queue;
    uint64_t moves_in_flight = 0;
    absl::Status blocked;
    int64_t next_rescan_ms = 0;
  };

  absl::flat_hash_map<NodeId, NodeDrain> nodes_;
  StringMap<uint64_t> moving_;  // key -> move id
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DRAIN_TRACKER_H_
