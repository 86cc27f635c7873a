// Slab space that belongs to no object but must not be handed out yet
// (HeldExtent, records.h), and the rule for how long: the memory of a
// removed, evicted, replaced or moved object that a reader may still hold a
// lease or a capability on, a reservation's range while its write
// capabilities work, and the target of a move in progress.
//
// The held-space rule, in a pool with a key (options.capabilities): memory
// is not reused while a capability issued for it still works. A lookup holds
// the object for its lease and at least its read capabilities' lifetime
// plus the clock skew; a reservation's range is held until its write
// capabilities end (its deadline plus the skew), after an abort, an expiry
// or a rejected commit, and, once committed, when the object is removed,
// replaced or moved before then. Without a key, only leases hold memory.
//
// Thread safety: not thread-safe; the directory guards it with its lock.
#ifndef UNIPOOL_DIRECTORY_HELD_SPACE_H_
#define UNIPOOL_DIRECTORY_HELD_SPACE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "unipool/directory/directory_options.h"
#include "unipool/directory/node_registry.h"
#include "unipool/directory/records.h"

namespace unipool {

// How long memory stays held, from the directory's options.
class HoldRule {
 public:
  explicit HoldRule(const DirectoryOptions& options);

  // After a lookup: the lease, and with a key at least the read
  // capabilities' lifetime plus the clock skew.
  absl::Duration AfterLookup() const { return after_lookup_; }
  // After a reservation is made: its write capabilities' whole life.
  absl::Duration AfterReserve() const { return after_reserve_; }
  // When the write capabilities of a reservation due at `deadline_unix_ms`
  // stop working (0 without a key: nothing to wait for).
  int64_t WriteCapabilityEnd(int64_t deadline_unix_ms) const;

 private:
  bool keyed_;
  absl::Duration after_lookup_;
  absl::Duration after_reserve_;
};

// The held extents, each counted in its node's held_bytes while it lasts.
class HeldSpace {
 public:
  size_t size() const { return held_.size(); }
  const HeldExtent* Find(uint64_t id) const;

  // Holds `held` (its range is already allocated on its node).
  void Add(const HeldExtent& held, NodeRegistry& nodes);
  // Frees a held range on its node; unknown ids are ignored.
  void Release(uint64_t id, NodeRegistry& nodes);
  // Stops holding a range without freeing it: it now belongs to an object
  // (a finished move). Nullopt for an unknown id.
  std::optional<HeldExtent> Adopt(uint64_t id, NodeRegistry& nodes);
  // Forgets every extent on node `id`, whose slab is gone, and returns
  // their ids (for the catalog).
  std::vector<uint64_t> DropNode(NodeId id);
  // Ids of the extents held no longer at `now_unix_ms`.
  std::vector<uint64_t> ExpiredBy(int64_t now_unix_ms) const;
  // When the first extent on a node `on` accepts stops being held; nullopt:
  // none is held there.
  std::optional<int64_t> EarliestEnd(const std::function<bool(NodeId)>& on) const;

 private:
  absl::flat_hash_map<uint64_t, HeldExtent> held_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_HELD_SPACE_H_
