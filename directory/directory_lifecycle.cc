// The directory's lifecycle logic: accounting of copies and pins, releasing
// memory under leases, eviction, pins, drains and verification of readmitted
// slabs. The rest of Directory is in directory.cc.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
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
// A drain whose queue ran dry while copies remain rescans the map at most
// this often.
constexpr int64_t kDrainRescanMs = 1000;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

int64_t Directory::NowMs() const { return absl::ToUnixMillis(options_.clock()); }

bool Directory::IsPinned(std::string_view key) const {
  if (key_pins_.contains(key)) return true;
  for (const std::string& prefix : prefix_pins_) {
    if (StartsWith(key, prefix)) return true;
  }
  return false;
}

void Directory::Account(const ObjectEntry& entry, int sign) {
  auto add = [sign](uint64_t& counter) {
    if (sign > 0) {
      ++counter;
    } else {
      --counter;
    }
  };
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    if (Node* node = FindNode(copy.node_id)) {
      add(node->objects);
      if (entry.pinned()) add(node->pinned);
    }
  }
  if (entry.pinned()) add(pinned_objects_);
}

void Directory::SetPinned(ObjectEntry& entry, bool pinned) {
  if (entry.pinned() == pinned) return;
  Account(entry, -1);
  objects_.SetPinned(entry, pinned);
  Account(entry, +1);
}

void Directory::FreeCopy(const ObjectCopy& copy, uint64_t length) {
  if (Node* node = FindNode(copy.node_id)) node->allocator.Free(copy.offset, length);
}

Directory::Release Directory::PlanRelease(std::vector<ObjectCopy> copies, uint64_t length,
                                          int64_t lease_until_unix_ms, CatalogBatch& batch) {
  Release release;
  release.copies = std::move(copies);
  release.length = length;
  if (lease_until_unix_ms > NowMs()) {
    for (const ObjectCopy& copy : release.copies) {
      HeldExtent held{next_version_++, copy.node_id, copy.offset, length, lease_until_unix_ms};
      batch.PutHeld(held);
      release.held.push_back(held);
    }
    batch.PutNextVersion(next_version_);
  }
  return release;
}

void Directory::ApplyRelease(const Release& release) {
  if (release.held.empty()) {
    for (const ObjectCopy& copy : release.copies) FreeCopy(copy, release.length);
    return;
  }
  for (const HeldExtent& held : release.held) AddHeld(held);
}

void Directory::AddHeld(const HeldExtent& held) {
  if (Node* node = FindNode(held.node_id)) node->held_bytes += RoundUpToAllocation(held.length);
  held_.emplace(held.id, held);
}

void Directory::ReleaseHeld(uint64_t id) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  const HeldExtent& held = it->second;
  if (Node* node = FindNode(held.node_id)) {
    node->held_bytes -= RoundUpToAllocation(held.length);
    node->allocator.Free(held.offset, held.length);
  }
  held_.erase(it);
}

bool Directory::InRestartGrace(int64_t now_ms) const { return now_ms < restart_grace_until_ms_; }

// ------------------------------------------------------------------ eviction

absl::Status Directory::EvictObjects(std::span<const std::string> keys) {
  if (keys.empty()) return absl::OkStatus();
  CatalogBatch batch;
  for (const std::string& key : keys) batch.DeleteObject(key);
  // Not fsync'ed: RocksDB's log is sequential, so the synced commit of
  // whatever reuses this memory also makes the eviction durable.
  RETURN_IF_ERROR(catalog_->Write(batch, Durability::kProcessCrash));
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

absl::StatusOr<std::vector<Directory::Node*>> Directory::PlaceCopies(
    std::string_view key, uint64_t length, int copies, std::span<const NodeId> exclude) {
  uint64_t rounded = RoundUpToAllocation(length);
  std::vector<Node*> eligible;
  int taking = 0;
  for (auto& [id, node] : nodes_) {
    if (!node->up || node->record.draining ||
        std::find(exclude.begin(), exclude.end(), id) != exclude.end()) {
      continue;
    }
    ++taking;
    if (node->allocator.capacity() >= rounded) eligible.push_back(node.get());
  }
  if (taking < copies) {
    return absl::UnavailableError(absl::StrFormat(
        "'%s' needs %d cop%s on distinct nodes, but only %d live node%s take new objects",
        PrintableKey(key), copies, copies == 1 ? "y" : "ies", taking, taking == 1 ? "" : "s"));
  }
  if (static_cast<int>(eligible.size()) < copies) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("pool full: '%s' (%s) is larger than the slabs of the live nodes",
                        PrintableKey(key), FormatSize(rounded)));
  }
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
    const ObjectEntry* victim = nullptr;
    for (const ObjectEntry* e = objects_.ColdestEvictable(); e != nullptr;
         e = ObjectTable::Hotter(*e)) {
      if (e->lease_until_unix_ms > now_ms) continue;
      for (const ObjectCopy& copy : CopiesOf(*e)) {
        Node* node = FindNode(copy.node_id);
        if (node != nullptr && node->allocator.largest_free() < rounded &&
            std::find(eligible.begin(), eligible.end(), node) != eligible.end()) {
          victim = e;
          break;
        }
      }
      if (victim != nullptr) break;
    }
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

void Directory::EvictAboveWatermarks(int64_t now_ms) {
  size_t budget = kMaxEvictionsPerTick;
  auto over = [&](uint64_t used, uint64_t capacity, double mark) {
    return static_cast<double>(used) > mark * static_cast<double>(capacity);
  };
  // Walks from the coldest object, evicting those `wanted` accepts, until
  // `done` says the target is met. Returns false if it ran out of candidates.
  auto sweep = [&](auto wanted, auto done) {
    std::vector<std::string> victims;
    // Bytes each node would have freed, to know when to stop before the
    // catalog write.
    absl::flat_hash_map<NodeId, uint64_t> freed;
    uint64_t freed_total = 0;
    for (const ObjectEntry* e = objects_.ColdestEvictable();
         e != nullptr && victims.size() < budget && !done(freed, freed_total);
         e = ObjectTable::Hotter(*e)) {
      if (e->lease_until_unix_ms > now_ms || !wanted(*e)) continue;
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
  };
  for (auto& [id, node_ptr] : nodes_) {
    Node* node = node_ptr.get();
    uint64_t capacity = node->allocator.capacity();
    if (!node->up || budget == 0 || now_ms < node->next_eviction_scan_ms ||
        !over(node->allocator.used(), capacity, options_.high_watermark)) {
      continue;
    }
    uint64_t target = static_cast<uint64_t>(options_.low_watermark * static_cast<double>(capacity));
    NodeId node_id = id;
    bool met = sweep(
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
        });
    if (!met) node->next_eviction_scan_ms = now_ms + kEvictionRetryMs;
  }
  // The pool as a whole (live nodes).
  uint64_t used = 0, capacity = 0;
  for (auto& [id, node] : nodes_) {
    if (!node->up) continue;
    used += node->allocator.used();
    capacity += node->allocator.capacity();
  }
  if (budget > 0 && capacity > 0 && now_ms >= pool_next_eviction_scan_ms_ &&
      over(used, capacity, options_.high_watermark)) {
    uint64_t target = static_cast<uint64_t>(options_.low_watermark * static_cast<double>(capacity));
    bool met = sweep([](const ObjectEntry&) { return true; },
                     [&](const absl::flat_hash_map<NodeId, uint64_t>&, uint64_t freed_total) {
                       return used - std::min(used, freed_total) <= target;
                     });
    if (!met) pool_next_eviction_scan_ms_ = now_ms + kEvictionRetryMs;
  }
}

absl::StatusOr<uint64_t> Directory::Evict(std::string_view prefix) {
  absl::MutexLock lock(&mu_);
  int64_t now_ms = NowMs();
  std::vector<std::string> victims;
  for (const auto& [key, entry] : objects_) {
    if (StartsWith(key, prefix) && !entry.pinned() && entry.lease_until_unix_ms <= now_ms) {
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

// ---------------------------------------------------------------------- pins

absl::Status Directory::Pin(std::string_view key, bool prefix) {
  RETURN_IF_ERROR(ValidateKey(key));
  absl::MutexLock lock(&mu_);
  auto& pins = prefix ? prefix_pins_ : key_pins_;
  if (pins.contains(key)) return absl::OkStatus();
  CatalogBatch batch;
  batch.PutPin({std::string(key), prefix});
  RETURN_IF_ERROR(catalog_->Write(batch, Durability::kConfigured));
  pins.insert(std::string(key));
  uint64_t pinned = 0;
  if (!prefix) {
    if (auto it = objects_.find(key); it != objects_.end()) {
      SetPinned(it->second, true);
      pinned = 1;
    }
  } else {
    for (auto& [k, entry] : objects_) {
      if (StartsWith(k, key) && !entry.pinned()) {
        SetPinned(entry, true);
        ++pinned;
      }
    }
  }
  LogInfo("pinned %s '%s' (%u objects now pinned by it)", prefix ? "prefix" : "key",
          PrintableKey(key), pinned);
  return absl::OkStatus();
}

absl::Status Directory::Unpin(std::string_view key, bool prefix) {
  RETURN_IF_ERROR(ValidateKey(key));
  absl::MutexLock lock(&mu_);
  auto& pins = prefix ? prefix_pins_ : key_pins_;
  auto pin = pins.find(key);
  if (pin == pins.end()) {
    return absl::NotFoundError(absl::StrFormat("there is no %s pin on '%s'",
                                               prefix ? "prefix" : "key", PrintableKey(key)));
  }
  CatalogBatch batch;
  batch.DeletePin({std::string(key), prefix});
  RETURN_IF_ERROR(catalog_->Write(batch, Durability::kConfigured));
  pins.erase(pin);
  // Other pins may still cover some of the objects.
  if (!prefix) {
    if (auto it = objects_.find(key); it != objects_.end()) SetPinned(it->second, IsPinned(key));
  } else {
    for (auto& [k, entry] : objects_) {
      if (entry.pinned() && StartsWith(k, key)) SetPinned(entry, IsPinned(k));
    }
  }
  LogInfo("unpinned %s '%s'", prefix ? "prefix" : "key", PrintableKey(key));
  return absl::OkStatus();
}

// --------------------------------------------------------------------- drain

Directory::Node* Directory::FindNodeByName(std::string_view name) {
  for (auto& [id, node] : nodes_) {
    if (node->record.name == name || node->record.data_address == name) return node.get();
  }
  return nullptr;
}

void Directory::QueueIfDraining(const ObjectEntry& entry) {
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    Node* node = FindNode(copy.node_id);
    if (node != nullptr && node->record.draining) node->drain_queue.push_back(entry.key());
  }
}

DrainProgress Directory::ProgressOf(const Node& node) {
  DrainProgress progress;
  progress.node_id = node.record.node_id;
  progress.name = node.record.name;
  progress.draining = node.record.draining;
  progress.objects = node.objects;
  progress.used = node.allocator.used();
  progress.moves_in_flight = node.moves_in_flight;
  progress.done = node.record.draining && progress.used == 0;
  progress.blocked = node.drain_blocked;
  return progress;
}

absl::StatusOr<DrainProgress> Directory::Drain(std::string_view name, bool undrain) {
  absl::MutexLock lock(&mu_);
  Node* node = FindNodeByName(name);
  if (node == nullptr) {
    return absl::NotFoundError(absl::StrFormat("no node named '%s' in the pool", name));
  }
  if (node->record.draining == undrain) {
    NodeRecord record = node->record;
    record.draining = !undrain;
    CatalogBatch batch;
    batch.PutNode(record);
    RETURN_IF_ERROR(catalog_->Write(batch, Durability::kConfigured));
    node->record.draining = !undrain;
    node->drain_queue.clear();
    node->drain_blocked = absl::OkStatus();
    if (undrain) {
      LogInfo("node %u %s undrained: it takes new objects again", node->record.node_id,
              node->record.name);
    } else {
      for (const auto& [key, entry] : objects_) {
        for (const ObjectCopy& copy : CopiesOf(entry)) {
          if (copy.node_id == node->record.node_id) node->drain_queue.push_back(key);
        }
      }
      LogInfo("node %u %s draining: %u copies (%s) to move", node->record.node_id,
              node->record.name, node->objects, FormatSize(node->allocator.used()));
    }
  }
  return ProgressOf(*node);
}

std::vector<MovePlan> Directory::PlanMoves(size_t max) {
  std::vector<MovePlan> plans;
  absl::MutexLock lock(&mu_);
  int64_t now_ms = NowMs();
  int64_t deadline = absl::ToUnixMillis(options_.clock() + options_.put_timeout);
  CatalogBatch batch;
  for (auto& [id, node_ptr] : nodes_) {
    Node* node = node_ptr.get();
    if (!node->record.draining || plans.size() >= max) continue;
    if (node->drain_queue.empty() && node->objects > node->moves_in_flight &&
        now_ms >= node->next_drain_scan_ms) {
      // Copies that were not queued (committed late, failed moves, stuck).
      node->next_drain_scan_ms = now_ms + kDrainRescanMs;
      for (const auto& [key, entry] : objects_) {
        if (moving_.contains(key)) continue;
        for (const ObjectCopy& copy : CopiesOf(entry)) {
          if (copy.node_id == id) node->drain_queue.push_back(key);
        }
      }
    }
    uint64_t stuck = 0;
    absl::Status blocked;
    while (plans.size() < max && !node->drain_queue.empty()) {
      std::string key = std::move(node->drain_queue.front());
      node->drain_queue.pop_front();
      auto it = objects_.find(key);
      if (it == objects_.end() || moving_.contains(key)) continue;
      ObjectEntry& entry = it->second;
      std::vector<ObjectCopy> copies = CopiesOf(entry);
      auto from = std::find_if(copies.begin(), copies.end(),
                               [&](const ObjectCopy& c) { return c.node_id == id; });
      if (from == copies.end()) continue;
      // Read from the drained node itself while it is up, else from any
      // live copy.
      const ObjectCopy* source = nullptr;
      if (node->up) {
        source = &*from;
      } else {
        for (const ObjectCopy& c : copies) {
          Node* n = FindNode(c.node_id);
          if (n != nullptr && n->up) {
            source = &c;
            break;
          }
        }
      }
      if (source == nullptr) {
        ++stuck;
        continue;
      }
      std::vector<NodeId> exclude;
      for (const ObjectCopy& c : copies) exclude.push_back(c.node_id);
      absl::StatusOr<std::vector<Node*>> target = PlaceCopies(key, entry.length, 1, exclude);
      if (!target.ok()) {
        blocked =
            absl::Status(target.status().code(),
                         absl::StrFormat("drain of %s cannot move '%s': %s", node->record.name,
                                         PrintableKey(key), target.status().message()));
        node->drain_queue.push_front(std::move(key));
        break;
      }
      // PlaceCopies may have evicted objects, never this one (its copies'
      // nodes were excluded), so `entry` is still valid.
      Node* to = (*target)[0];
      HeldExtent held{next_version_++, to->record.node_id, *to->allocator.Allocate(entry.length),
                      entry.length, deadline};
      batch.PutHeld(held);
      AddHeld(held);
      MovePlan plan;
      plan.move_id = held.id;
      plan.key = key;
      plan.version = entry.version;
      plan.length = entry.length;
      plan.checksum = entry.checksum;
      plan.from_node = id;
      plan.from_offset = from->offset;
      plan.source_node = source->node_id;
      plan.source_address = FindNode(source->node_id)->record.data_address;
      plan.source_offset = source->offset;
      plan.target_node = to->record.node_id;
      plan.target_address = to->record.data_address;
      plan.target_offset = held.offset;
      moving_[key] = held.id;
      ++node->moves_in_flight;
      plans.push_back(std::move(plan));
    }
    if (!blocked.ok()) {
      node->drain_blocked = blocked;
    } else if (stuck > 0) {
      node->drain_blocked = absl::FailedPreconditionError(absl::StrFormat(
          "node %s is down and %u of its objects have no copy on a live node: bring it back up, "
          "or remove them",
          node->record.name, stuck));
    } else if (!plans.empty() || node->objects == 0) {
      node->drain_blocked = absl::OkStatus();
    }
  }
  if (batch.empty()) return plans;
  batch.PutNextVersion(next_version_);
  if (absl::Status s = catalog_->Write(batch, Durability::kProcessCrash); !s.ok()) {
    LogError("cannot persist move reservations: %s", s.ToString());
    for (const MovePlan& plan : plans) {
      ReleaseHeld(plan.move_id);
      moving_.erase(plan.key);
      if (Node* node = FindNode(plan.from_node)) --node->moves_in_flight;
    }
    return {};
  }
  return plans;
}

void Directory::FinishMove(const MovePlan& plan, bool copied) {
  absl::MutexLock lock(&mu_);
  Node* from = FindNode(plan.from_node);
  if (from != nullptr && from->moves_in_flight > 0) --from->moves_in_flight;
  if (auto m = moving_.find(plan.key); m != moving_.end() && m->second == plan.move_id) {
    moving_.erase(m);
  }
  auto held = held_.find(plan.move_id);
  if (held == held_.end()) return;  // expired, or the target lost its slab
  auto it = objects_.find(plan.key);
  std::vector<ObjectCopy> copies;
  bool current = false;
  if (it != objects_.end() && it->second.version == plan.version) {
    copies = CopiesOf(it->second);
    current = std::find(copies.begin(), copies.end(),
                        ObjectCopy{plan.from_node, plan.from_offset}) != copies.end();
  }
  CatalogBatch batch;
  batch.DeleteHeld(plan.move_id);
  if (!copied || !current) {
    // Nobody can know the target's bytes: free them at once.
    if (absl::Status s = catalog_->Write(batch, Durability::kProcessCrash); !s.ok()) {
      LogError("cannot persist a cancelled move: %s", s.ToString());
    }
    ReleaseHeld(plan.move_id);
    if (!copied && from != nullptr && it != objects_.end() && from->record.draining) {
      from->drain_queue.push_back(plan.key);  // try again
    }
    return;
  }
  ObjectEntry& entry = it->second;
  for (ObjectCopy& c : copies) {
    if (c == ObjectCopy{plan.from_node, plan.from_offset})
      c = {plan.target_node, plan.target_offset};
  }
  ObjectRecord moved = entry;
  SetCopies(moved, copies);
  batch.PutObject(plan.key, moved);
  Release old = PlanRelease({ObjectCopy{plan.from_node, plan.from_offset}}, entry.length,
                            entry.lease_until_unix_ms, batch);
  if (absl::Status s = catalog_->Write(batch, Durability::kConfigured); !s.ok()) {
    LogError("cannot persist a move of '%s': %s", PrintableKey(plan.key), s.ToString());
    ReleaseHeld(plan.move_id);
    return;
  }
  // The target's space now belongs to the object: no longer held.
  if (Node* to = FindNode(plan.target_node)) {
    to->held_bytes -= RoundUpToAllocation(plan.length);
  }
  held_.erase(plan.move_id);
  Account(entry, -1);
  SetCopies(entry, copies);
  Account(entry, +1);
  ApplyRelease(old);
}

// -------------------------------------------------------------- verification

std::optional<VerifyPlan> Directory::PlanVerification() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, node] : nodes_) {
    if (!node->up || !node->unverified || node->verifying) continue;
    VerifyPlan plan;
    plan.node_id = id;
    plan.slab_id = node->record.slab_id;
    plan.address = node->record.data_address;
    for (const auto& [key, entry] : objects_) {
      for (const ObjectCopy& copy : CopiesOf(entry)) {
        if (copy.node_id == id) {
          plan.items.push_back({key, entry.version, copy.offset, entry.length, entry.checksum});
        }
      }
    }
    node->verifying = true;
    return plan;
  }
  return std::nullopt;
}

void Directory::FinishVerification(const VerifyPlan& plan, const absl::Status& result,
                                   std::span<const VerifyItem> bad) {
  absl::MutexLock lock(&mu_);
  Node* node = FindNode(plan.node_id);
  if (node == nullptr || node->record.slab_id != plan.slab_id || !node->verifying) return;
  node->verifying = false;
  if (!result.ok()) {
    LogWarning("cannot verify the slab of node %s yet: %s", node->record.name, result.ToString());
    return;  // planned again while the node stays unverified
  }
  CatalogBatch batch;
  struct Drop {
    std::string key;
    ObjectCopy copy;
    uint64_t length;
  };
  std::vector<Drop> drops;
  for (const VerifyItem& item : bad) {
    auto it = objects_.find(item.key);
    if (it == objects_.end() || it->second.version != item.version) continue;
    std::vector<ObjectCopy> copies = CopiesOf(it->second);
    auto c = std::find(copies.begin(), copies.end(), ObjectCopy{plan.node_id, item.offset});
    if (c == copies.end()) continue;
    copies.erase(c);
    if (copies.empty()) {
      batch.DeleteObject(item.key);
    } else {
      ObjectRecord record = it->second;
      SetCopies(record, copies);
      batch.PutObject(item.key, record);
    }
    drops.push_back({item.key, {plan.node_id, item.offset}, item.length});
  }
  if (!batch.empty()) {
    if (absl::Status s = catalog_->Write(batch, Durability::kConfigured); !s.ok()) {
      LogError("cannot persist dropped copies: %s", s.ToString());
      return;
    }
  }
  uint64_t lost = 0;
  for (const Drop& drop : drops) {
    auto it = objects_.find(drop.key);
    std::vector<ObjectCopy> copies = CopiesOf(it->second);
    copies.erase(std::find(copies.begin(), copies.end(), drop.copy));
    // The bytes are wrong: nothing is lost by reusing them at once.
    FreeCopy(drop.copy, drop.length);
    Account(it->second, -1);
    if (copies.empty()) {
      objects_.Erase(it);
      ++lost;
    } else {
      SetCopies(it->second, copies);
      Account(it->second, +1);
    }
  }
  node->unverified = false;
  if (drops.empty()) {
    LogInfo("node %s: all %u readmitted copies verified", node->record.name, plan.items.size());
  } else {
    LogWarning(
        "node %s: %u of %u readmitted copies failed their checksum and were dropped (%u "
        "objects had no other copy)",
        node->record.name, drops.size(), plan.items.size(), lost);
  }
}

}  // namespace unipool
