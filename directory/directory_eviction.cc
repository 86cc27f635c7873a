// Directory: eviction (least recently used, unpinned, unleased objects) when
// a node or the pool passes its high watermark, when a put or a move needs
// room, and on request.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {
namespace {

// A node whose eviction scan could not reach its low watermark (everything
// left is pinned or leased) is scanned again after this long, not on every
// tick.
constexpr int64_t kEvictionRetryMs = 1000;
// Evictions per tick at most: bounds how long one tick holds the lock.
constexpr size_t kMaxEvictionsPerTick = 4096;

bool Over(uint64_t used, uint64_t capacity, double mark) {
  return static_cast<double>(used) > mark * static_cast<double>(capacity);
}

}  // namespace

absl::Status Directory::EvictObjects(std::span<const std::string> keys) {
  if (keys.empty()) return absl::OkStatus();
  CatalogBatch batch;
  for (const std::string& key : keys) batch.DeleteObject(key);
  // Not fsync'ed: RocksDB's log is sequential, so the synced commit of
  // whatever reuses this memory also makes the eviction durable.
  RETURN_IF_ERROR(catalog_->Write(batch).status());
  for (const std::string& key : keys) {
    auto it = objects_.find(key);
    if (it == objects_.end()) continue;
    for (const ObjectCopy& copy : CopiesOf(it->second)) {
      FreeCopy(copy, it->second.length);
      if (Node* node = FindNode(copy.node_id)) ++node->evictions;
    }
    Account(it->second, -1);
    objects_.Erase(it);
    evictions_total_.fetch_add(1, std::memory_order_relaxed);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Directory::Node*>> Directory::EligibleNodes(
    std::string_view key, uint64_t rounded, int copies, std::span<const NodeId> exclude) {
  std::vector<Node*> eligible;
  int taking = 0;
  for (auto& [id, node] : nodes_) {
    if (!node->up() || node->record.draining ||
        std::find(exclude.begin(), exclude.end(), id) != exclude.end()) {
      continue;
    }
    ++taking;
    if (node->allocator.capacity() >= rounded) eligible.push_back(node.get());
  }
  if (taking < copies) {
    std::vector<std::string> states;
    for (auto& [id, node] : nodes_) {
      states.push_back(absl::StrFormat("%s %s%s", node->record.name,
                                       LivenessName(node->health.state()),
                                       node->record.draining ? " draining" : ""));
    }
    return absl::UnavailableError(absl::StrFormat(
        "'%s' needs %d cop%s on distinct nodes, but only %d live node%s take new objects (%s)",
        PrintableKey(key), copies, copies == 1 ? "y" : "ies", taking, taking == 1 ? "" : "s",
        absl::StrJoin(states, ", ")));
  }
  if (static_cast<int>(eligible.size()) < copies) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("pool full: '%s' (%s) is larger than the slabs of the live nodes",
                        PrintableKey(key), FormatSize(rounded)));
  }
  return eligible;
}

const ObjectEntry* Directory::ColdestVictim(std::span<Node* const> eligible, uint64_t rounded,
                                            int64_t now_ms) {
  for (const ObjectEntry* e = objects_.ColdestEvictable(); e != nullptr;
       e = ObjectTable::Hotter(*e)) {
    if (e->lease_until_unix_ms() > now_ms) continue;
    for (const ObjectCopy& copy : CopiesOf(*e)) {
      Node* node = FindNode(copy.node_id);
      if (node != nullptr && node->allocator.largest_free() < rounded &&
          std::find(eligible.begin(), eligible.end(), node) != eligible.end()) {
        return e;
      }
    }
  }
  return nullptr;
}

absl::StatusOr<std::vector<Directory::Node*>> Directory::PlaceCopies(
    std::string_view key, uint64_t length, int copies, std::span<const NodeId> exclude,
    bool may_evict) {
  uint64_t rounded = RoundUpToAllocation(length);
  ASSIGN_OR_RETURN(std::vector<Node*> eligible, EligibleNodes(key, rounded, copies, exclude));
  // Most free bytes first; ties: lowest id.
  auto roomier = [](Node* a, Node* b) {
    if (a->allocator.free_bytes() != b->allocator.free_bytes()) {
      return a->allocator.free_bytes() > b->allocator.free_bytes();
    }
    return a->record.node_id < b->record.node_id;
  };
  int64_t now_ms = NowMs();
  uint64_t evicted = 0;
  while (true) {
    std::vector<Node*> fit;
    for (Node* node : eligible) {
      if (node->allocator.largest_free() >= rounded) fit.push_back(node);
    }
    if (static_cast<int>(fit.size()) >= copies) {
      std::sort(fit.begin(), fit.end(), roomier);
      fit.resize(copies);
      return fit;
    }
    // Make room: the least recently used evictable object with a copy on an
    // eligible node that lacks room.
    const ObjectEntry* victim = may_evict ? ColdestVictim(eligible, rounded, now_ms) : nullptr;
    if (victim == nullptr) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "pool full: no room for %s ('%s') on %d node%s, and every object that could make room "
          "is pinned or leased%s",
          FormatSize(rounded), PrintableKey(key), copies, copies == 1 ? "" : "s",
          evicted > 0 ? absl::StrFormat(" (%u evicted trying)", evicted) : ""));
    }
    std::string victim_key = victim->key();
    RETURN_IF_ERROR(EvictObjects({&victim_key, 1}));
    ++evicted;
  }
}

bool Directory::EvictSweep(const SweepWanted& wanted, const SweepDone& done, int64_t now_ms,
                           size_t& budget) {
  std::vector<std::string> victims;
  // Bytes each node would have freed, to know when to stop before the
  // catalog write.
  absl::flat_hash_map<NodeId, uint64_t> freed;
  uint64_t freed_total = 0;
  for (const ObjectEntry* e = objects_.ColdestEvictable();
       e != nullptr && victims.size() < budget && !done(freed, freed_total);
       e = ObjectTable::Hotter(*e)) {
    if (e->lease_until_unix_ms() > now_ms || !wanted(*e)) continue;
    victims.push_back(e->key());
    for (const ObjectCopy& copy : CopiesOf(*e)) {
      freed[copy.node_id] += RoundUpToAllocation(e->length);
      freed_total += RoundUpToAllocation(e->length);
    }
  }
  bool met = done(freed, freed_total);
  if (absl::Status s = EvictObjects(victims); !s.ok()) {
    LogError("cannot persist evictions: %s", s.ToString());
    return false;
  }
  if (!victims.empty()) {
    LogInfo("evicted %u objects (%s) above the high watermark", victims.size(),
            FormatSize(freed_total));
  }
  budget -= std::min(budget, victims.size());
  return met;
}

void Directory::EvictAboveWatermarks(int64_t now_ms) {
  size_t budget = kMaxEvictionsPerTick;
  for (auto& [id, node_ptr] : nodes_) {
    Node* node = node_ptr.get();
    uint64_t capacity = node->allocator.capacity();
    if (!node->up() || budget == 0 || now_ms < node->next_eviction_scan_ms ||
        !Over(node->allocator.used(), capacity, options_.high_watermark)) {
      continue;
    }
    uint64_t target = static_cast<uint64_t>(options_.low_watermark * static_cast<double>(capacity));
    NodeId node_id = id;
    bool met = EvictSweep(
        [&](const ObjectEntry& e) {
          for (const ObjectCopy& copy : CopiesOf(e)) {
            if (copy.node_id == node_id) return true;
          }
          return false;
        },
        [&](const absl::flat_hash_map<NodeId, uint64_t>& freed, uint64_t) {
          auto it = freed.find(node_id);
          uint64_t f = it == freed.end() ? 0 : it->second;
          return node->allocator.used() - std::min(node->allocator.used(), f) <= target;
        },
        now_ms, budget);
    if (!met) node->next_eviction_scan_ms = now_ms + kEvictionRetryMs;
  }
  EvictPoolAboveWatermark(now_ms, budget);
}

void Directory::EvictPoolAboveWatermark(int64_t now_ms, size_t& budget) {
  // The pool as a whole (live nodes).
  uint64_t used = 0, capacity = 0;
  for (auto& [id, node] : nodes_) {
    if (!node->up()) continue;
    used += node->allocator.used();
    capacity += node->allocator.capacity();
  }
  if (budget == 0 || capacity == 0 || now_ms < pool_next_eviction_scan_ms_ ||
      !Over(used, capacity, options_.high_watermark)) {
    return;
  }
  uint64_t target = static_cast<uint64_t>(options_.low_watermark * static_cast<double>(capacity));
  bool met = EvictSweep([](const ObjectEntry&) { return true; },
                        [&](const absl::flat_hash_map<NodeId, uint64_t>&, uint64_t freed_total) {
                          return used - std::min(used, freed_total) <= target;
                        },
                        now_ms, budget);
  if (!met) pool_next_eviction_scan_ms_ = now_ms + kEvictionRetryMs;
}

absl::StatusOr<uint64_t> Directory::Evict(std::string_view prefix) {
  ExclusiveLock lock(this);
  int64_t now_ms = NowMs();
  std::vector<std::string> victims;
  for (const auto& [key, entry] : objects_) {
    if (KeyStartsWith(key, prefix) && !entry.pinned() && entry.lease_until_unix_ms() <= now_ms) {
      victims.push_back(key);
    }
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
