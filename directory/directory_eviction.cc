// Directory: eviction. Placement (placement.h) chooses nodes and victims;
// here the victims are evicted, in one catalog write per batch: when a put
// or a move needs room, above the watermarks, and on request.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/retry_after.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {
namespace {

// Evictions per tick at most: bounds how long one tick holds the lock.
constexpr size_t kMaxEvictionsPerTick = 4096;
// The shortest wait a full pool asks of a put (PoolFullForNow).
constexpr int64_t kRoomPollMs = 100;

}  // namespace

absl::StatusOr<std::vector<NodeEntry*>> Directory::PlaceCopies(std::string_view key,
                                                               uint64_t length, int copies,
                                                               std::span<const NodeId> exclude,
                                                               bool may_evict) {
  uint64_t rounded = RoundUpToAllocation(length);
  ASSIGN_OR_RETURN(std::vector<NodeEntry*> eligible,
                   Placement::EligibleNodes(nodes_, key, rounded, copies, exclude));
  int64_t now_ms = NowMs();
  uint64_t evicted = 0;
  while (true) {
    std::vector<NodeEntry*> fit = Placement::Fit(eligible, rounded, copies);
    if (!fit.empty()) return fit;
    // Never another tenant's objects within their storage quota (tenants.h).
    auto allowed = [&](const ObjectEntry& e)
                       ABSL_NO_THREAD_SAFETY_ANALYSIS { return MayEvictFor(e, key); };
    const ObjectEntry* victim =
        may_evict ? Placement::ColdestVictim(objects_, nodes_, eligible, rounded, now_ms, allowed)
                  : nullptr;
    if (victim == nullptr) {
      std::string what =
          absl::StrFormat("pool full: no room for %s ('%s') on %d node%s%s", FormatSize(rounded),
                          PrintableKey(key), copies, copies == 1 ? "" : "s",
                          evicted > 0 ? absl::StrFormat(" (%u evicted trying)", evicted) : "");
      // Without eviction (pre-handed reservations) the answer is only "not now".
      if (!may_evict) return absl::ResourceExhaustedError(what);
      std::optional<int64_t> room_at = RoomMayComeAt(eligible, rounded, now_ms, allowed);
      if (!room_at.has_value()) {
        return absl::ResourceExhaustedError(
            absl::StrCat(what,
                         ", and every object that could make room is pinned or another "
                         "tenant's within its quota"));
      }
      return PoolFullForNow(what, *room_at, now_ms);
    }
    std::string victim_key = victim->key();
    RETURN_IF_ERROR(EvictObjects({&victim_key, 1}));
    ++evicted;
  }
}

std::optional<int64_t> Directory::RoomMayComeAt(std::span<NodeEntry* const> eligible,
                                                uint64_t rounded, int64_t now_ms,
                                                const Placement::MayEvict& may_evict) {
  // Room comes on an eligible node that lacks it now, when an object there
  // stops being leased (a restart leases them all for its grace), a held
  // extent there is released, or a reservation there is committed (its
  // object is then evictable) or reclaimed.
  auto lacking = [&](NodeId id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    NodeEntry* node = nodes_.Find(id);
    return node != nullptr && node->allocator.largest_free() < rounded &&
           std::find(eligible.begin(), eligible.end(), node) != eligible.end();
  };
  std::optional<int64_t> earliest =
      Placement::EarliestLeaseEnd(objects_, nodes_, eligible, rounded, now_ms, may_evict);
  for (std::optional<int64_t> end :
       {held_.EarliestEnd(lacking), reservations_.EarliestDeadline(lacking)}) {
    if (end.has_value() && (!earliest.has_value() || *end < *earliest)) earliest = end;
  }
  return earliest;
}

absl::Status Directory::PoolFullForNow(std::string_view what, int64_t room_at_ms, int64_t now_ms) {
  // Memory past its end is reclaimed at the next tick, not at once: a put
  // told to come back sooner would only be told again.
  int64_t wait_ms = std::max(room_at_ms - now_ms, kRoomPollMs);
  return WithRetryAfter(
      absl::ResourceExhaustedError(absl::StrCat(
          std::string(what),
          " for now: what could make room is leased, held or reserved, and the first of it "
          "ends in ",
          absl::FormatDuration(absl::Milliseconds(wait_ms)), "; try again then")),
      absl::Milliseconds(wait_ms));
}

absl::Status Directory::EvictObjects(std::span<const std::string> keys) {
  if (keys.empty()) return absl::OkStatus();
  CatalogBatch batch;
  // Memory whose write capabilities still work (its put's revocation has not
  // reached the nodes yet) is held until they end (held_space.h).
  std::vector<Release> releases;
  for (const std::string& key : keys) {
    auto it = objects_.find(key);
    if (it != objects_.end()) {
      releases.push_back(PlanRelease(CopiesOf(it->second), it->second.length,
                                     it->second.write_until_unix_ms, batch));
    }
  }
  for (const std::string& key : keys) {
    // An object with a flash copy stays, on flash only (directory_flash.cc).
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second.flash.empty()) {
      batch.DeleteObject(key);
      continue;
    }
    ObjectRecord on_flash = it->second;
    on_flash.copies.clear();
    batch.PutObject(key, on_flash);
  }
  // Not fsync'ed: RocksDB's log is sequential, so the synced commit of
  // whatever reuses this memory also makes the eviction durable.
  RETURN_IF_ERROR(catalog_->Write(batch).status());
  for (const Release& release : releases) ApplyRelease(release);
  for (const std::string& key : keys) {
    auto it = objects_.find(key);
    if (it == objects_.end()) continue;
    for (const ObjectCopy& copy : CopiesOf(it->second)) {
      if (NodeEntry* node = nodes_.Find(copy.node_id)) ++node->evictions;
    }
    evictions_total_.fetch_add(1, std::memory_order_relaxed);
    if (!it->second.flash.empty()) {
      KeepOnFlashOnly(it->second);
      continue;
    }
    Account(it->second, -1);
    objects_.Erase(it);
  }
  return absl::OkStatus();
}

void Directory::EvictAboveWatermarks(int64_t now_ms) {
  size_t budget = kMaxEvictionsPerTick;
  auto evict = [&](const Victims& victims) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::Status s = EvictObjects(victims.keys); !s.ok()) {
      LogError("cannot persist evictions: %s", s.ToString());
      return;
    }
    if (!victims.keys.empty()) {
      LogInfo("evicted %u objects (%s) above the high watermark", victims.keys.size(),
              FormatSize(victims.bytes));
    }
    budget -= std::min(budget, victims.keys.size());
  };
  EvictTenantsOverQuota();
  // The sweeps spare tenants within their storage quota (tenants.h).
  auto allowed = [&](const ObjectEntry& e)
                     ABSL_NO_THREAD_SAFETY_ANALYSIS { return MayEvictFor(e, ""); };
  for (auto& [id, node] : nodes_) {
    if (auto victims = placement_.NodeVictims(objects_, *node, now_ms, budget, allowed)) {
      evict(*victims);
    }
  }
  if (auto victims = placement_.PoolVictims(objects_, nodes_, now_ms, budget, allowed)) {
    evict(*victims);
  }
}

absl::StatusOr<uint64_t> Directory::Evict(std::string_view prefix, EvictTier tier) {
  ExclusiveLock lock(this);
  int64_t now_ms = NowMs();
  std::vector<std::string> victims;
  for (const auto& [key, entry] : objects_) {
    // Only objects with a copy in the tier asked for.
    bool has = tier == EvictTier::kMemory  ? !entry.copies.empty()
               : tier == EvictTier::kFlash ? !entry.flash.empty()
                                           : true;
    if (has && KeyStartsWith(key, prefix) && !entry.pinned() &&
        entry.lease_until_unix_ms() <= now_ms) {
      victims.push_back(key);
    }
  }
  if (tier != EvictTier::kMemory) {
    RETURN_IF_ERROR(DropFlashCopies(victims));
    if (tier == EvictTier::kFlash) {
      LogInfo("dropped the flash copies of %u objects under prefix '%s' on request", victims.size(),
              PrintableKey(prefix));
      return victims.size();
    }
    // kAll: what was on flash only is gone already; the rest goes below.
  }
  // In batches, so that one request cannot build an unbounded write.
  uint64_t evicted = 0;
  for (size_t first = 0; first < victims.size(); first += kMaxEvictionsPerTick) {
    size_t n = std::min(kMaxEvictionsPerTick, victims.size() - first);
    RETURN_IF_ERROR(EvictObjects(std::span<const std::string>(victims).subspan(first, n)));
    evicted += n;
  }
  if (evicted > 0) {
    LogInfo("evicted %u objects under prefix '%s' on request", evicted, PrintableKey(prefix));
  }
  return evicted;
}

}  // namespace unipool
