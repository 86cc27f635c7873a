// Where copies go, and what to evict to make room. Placement decides; the
// Directory allocates, evicts and writes the catalog.
//   Copies    on distinct live nodes that are not draining, the ones with the
//             most free bytes first (ties: lowest id).
//   Room      when too few nodes have room, the least recently used object
//             that is neither pinned nor leased and has a copy on a node
//             that lacks room is evicted, and placement tried again.
//   Watermarks  a node (or the pool) past the high watermark of its
//             capacity is brought down to the low one, coldest objects
//             first; one whose scan cannot get there (the rest is pinned or
//             leased) is scanned again only after a retry delay.
//   Tenants   every victim must also pass the caller's MayEvict (objects
//             of a tenant within its storage quota: tenants.h).
//
// Thread safety: not thread-safe; the directory guards it with its lock.
#ifndef UNIPOOL_DIRECTORY_PLACEMENT_H_
#define UNIPOOL_DIRECTORY_PLACEMENT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "unipool/directory/node_registry.h"
#include "unipool/directory/object_table.h"

namespace unipool {

// Objects to evict, the bytes their copies free, and whether that reaches
// the low watermark.
struct Victims {
  std::vector<std::string> keys;
  uint64_t bytes = 0;
  bool enough = false;
};

class Placement {
 public:
  // A scan that could not reach the low watermark waits this long.
  static constexpr int64_t kRetryMs = 1000;

  // Whether an object may be evicted (null: every one may).
  using MayEvict = std::function<bool(const ObjectEntry&)>;

  Placement(double high_watermark, double low_watermark)
      : high_(high_watermark), low_(low_watermark) {}

  // The live, non-draining nodes outside `exclude` whose slab can hold
  // `rounded` bytes. Unavailable when fewer than `copies` nodes take
  // objects; ResourceExhausted when fewer than `copies` are big enough.
  static absl::StatusOr<std::vector<NodeEntry*>> EligibleNodes(const NodeRegistry& nodes,
                                                               std::string_view key,
                                                               uint64_t rounded, int copies,
                                                               std::span<const NodeId> exclude);
  // `copies` of the eligible nodes with room for `rounded` bytes now, most
  // free bytes first; empty when fewer have room.
  static std::vector<NodeEntry*> Fit(std::span<NodeEntry* const> eligible, uint64_t rounded,
                                     int copies);
  // The coldest unleased evictable object with a copy on an eligible node
  // that lacks room for `rounded` bytes; nullptr: none.
  static const ObjectEntry* ColdestVictim(const ObjectTable& objects, const NodeRegistry& nodes,
                                          std::span<NodeEntry* const> eligible, uint64_t rounded,
                                          int64_t now_ms, const MayEvict& may_evict = nullptr);
  // When ColdestVictim found none: the earliest end of a lease on an object
  // it would take but for that lease (room may come then); nullopt when no
  // leased object could make room (the rest is pinned or refused by
  // `may_evict`).
  static std::optional<int64_t> EarliestLeaseEnd(const ObjectTable& objects,
                                                 const NodeRegistry& nodes,
                                                 std::span<NodeEntry* const> eligible,
                                                 uint64_t rounded, int64_t now_ms,
                                                 const MayEvict& may_evict = nullptr);

  // What to evict from `node` to bring it to the low watermark, at most
  // `budget` objects; nullopt when it is not due (down, under its high
  // watermark, or waiting after a scan that fell short).
  std::optional<Victims> NodeVictims(const ObjectTable& objects, const NodeEntry& node,
                                     int64_t now_ms, size_t budget,
                                     const MayEvict& may_evict = nullptr);
  // The same for the pool as a whole (its live nodes).
  std::optional<Victims> PoolVictims(const ObjectTable& objects, const NodeRegistry& nodes,
                                     int64_t now_ms, size_t budget,
                                     const MayEvict& may_evict = nullptr);

 private:
  using Wanted = std::function<bool(const ObjectEntry&)>;
  // Coldest unleased objects `wanted` accepts until `enough(victims)` or
  // `budget` objects.
  static Victims Sweep(const ObjectTable& objects, int64_t now_ms, size_t budget,
                       const Wanted& wanted, const std::function<bool(const Victims&)>& enough);
  bool Over(uint64_t used, uint64_t capacity) const;

  const double high_;
  const double low_;
  absl::flat_hash_map<NodeId, int64_t> next_node_scan_ms_;
  int64_t next_pool_scan_ms_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_PLACEMENT_H_
