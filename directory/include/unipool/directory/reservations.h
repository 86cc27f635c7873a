// Space reserved for puts that are not committed yet: PutStart's
// reservations and the pre-handed ones a commit hands its client for its
// next puts. Each is charged to its owner's quota (ClientQuota) while it
// lives, and a pre-handed one also to its holder's caps: a few batches'
// worth, never more than a share of the pool (they are reserved without
// eviction). The slab ranges themselves are allocated and freed by the
// Directory, which owns the nodes.
//
// Thread safety: not thread-safe; the directory guards it with its lock.
#ifndef UNIPOOL_DIRECTORY_RESERVATIONS_H_
#define UNIPOOL_DIRECTORY_RESERVATIONS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "unipool/directory/client_quota.h"
#include "unipool/directory/directory_types.h"
#include "unipool/directory/records.h"

namespace unipool {

// What one client may hold pre-handed.
inline constexpr uint64_t kMaxPrehandedPerClient = 1024;
inline constexpr uint64_t kMaxPrehandedBytesPerClient = 256ull << 20;
inline constexpr uint64_t kPrehandedCapacityShare = 8;  // at most 1/8 of the live pool

class Reservations {
 public:
  explicit Reservations(ClientQuotaLimits limits) : quota_(limits) {}

  size_t size() const { return pending_.size(); }
  PendingPut* Find(uint64_t put_id);

  // OK when `owner` may reserve `bytes` more in a pool of `capacity` bytes.
  absl::Status CheckQuota(std::string_view owner, uint64_t bytes, uint64_t capacity,
                          uint64_t limit = 0) const {
    return quota_.Check(owner, bytes, capacity, limit);
  }
  // Whether `who` may be handed one more reservation of `bytes`: within its
  // pre-handed caps and its owner's quota.
  bool MayPrehand(const Committer& who, uint64_t bytes, uint64_t capacity) const;

  // Adds a reservation under a new random put id (never 0, never one a live
  // reservation has) and charges it. Returns it as stored.
  const PendingPut& Add(PendingPut pending);
  // A reservation read back from the catalog: kept with its id, charged to
  // no one (what it cost is not persisted).
  void Restore(PendingPut pending);
  // Removes a reservation and refunds what it cost; nullopt when unknown.
  std::optional<PendingPut> Take(uint64_t put_id);

  // Ids of the reservations past their deadline at `now_unix_ms`.
  std::vector<uint64_t> ExpiredBy(int64_t now_unix_ms) const;
  // Ids of the reservations with a copy on node `id`.
  std::vector<uint64_t> WithCopyOn(NodeId id) const;
  // The earliest deadline of a reservation with a copy on a node `on`
  // accepts (it is committed or reclaimed by then); nullopt: none.
  std::optional<int64_t> EarliestDeadline(const std::function<bool(NodeId)>& on) const;

 private:
  struct Prehanded {
    uint64_t count = 0;
    uint64_t bytes = 0;
  };
  uint64_t NewPutId() const;
  void Refund(const PendingPut& pending);

  absl::flat_hash_map<uint64_t, PendingPut> pending_;
  ClientQuota quota_;
  // Pre-handed reservations out, per client id.
  absl::flat_hash_map<uint64_t, Prehanded> prehanded_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_RESERVATIONS_H_
