// Directory: the flash tier (docs/flash.md). Each object records the nodes
// whose flash holds its bytes (ObjectRecord::flash):
//   - a new object's memory copies on nodes with flash are written there in
//     the background (PlanDemotions, by the lifecycle worker), so that
//     evicting them later only frees memory: the object stays, on flash only;
//   - a lookup of an object on flash only first has a node read it back into
//     memory reserved for it (PlanPromotions, by the service), so a flash hit
//     is served as any memory hit, with the same checksum;
//   - a node that lost a page (its LRU, bad media) says so when asked to
//     read it: the flash copy is dropped and the lookup misses.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {
namespace {

// New objects waiting to be demoted, at most: past it the oldest are
// forgotten (an eviction then drops them, as without flash).
constexpr size_t kMaxQueuedDemotions = size_t{1} << 20;

bool Holds(const std::vector<NodeId>& nodes, NodeId id) {
  return std::find(nodes.begin(), nodes.end(), id) != nodes.end();
}

// The node's flash no longer has the page (or never wrote it whole).
bool PageGone(const absl::Status& status) {
  return absl::IsNotFound(status) || absl::IsDataLoss(status) || absl::IsOutOfRange(status);
}

}  // namespace

absl::StatusOr<ObjectInfo> Directory::FlashInfoOf(const ObjectRecord& object,
                                                  int64_t expires_unix_ms) {
  ObjectInfo info;
  info.length = object.length;
  info.version = object.version;
  info.checksum = object.checksum;
  for (NodeId id : object.flash) {
    NodeEntry* node = nodes_.Find(id);
    if (node == nullptr || !node->up() || node->flash_capacity == 0) continue;
    CopyLocation location;
    location.node_id = id;
    location.node_address = node->record.data_address;
    location.node_host = node->record.host;
    location.node_up = true;
    location.on_flash = true;
    // Names the page by its version, which is never reused: the capability
    // reads this page from flash and nothing of the slab.
    location.capability = Grant(
        *node,
        {.offset = object.version, .length = object.length, .access = wire::Access::FlashRead},
        expires_unix_ms);
    info.copies.push_back(std::move(location));
  }
  if (info.copies.empty()) {
    return absl::NotFoundError("the object is on flash only, and no node holding it is up");
  }
  return info;
}

bool Directory::HasLiveFlash(const ObjectRecord& object) {
  for (NodeId id : object.flash) {
    NodeEntry* node = nodes_.Find(id);
    if (node != nullptr && node->up() && node->flash_capacity > 0) return true;
  }
  return false;
}

void Directory::QueueDemotion(const ObjectEntry& entry) {
  for (const ObjectCopy& copy : entry.copies) {
    NodeEntry* node = nodes_.Find(copy.node_id);
    if (node == nullptr || node->flash_capacity == 0 || Holds(entry.flash, copy.node_id)) continue;
    if (demote_queue_.size() >= kMaxQueuedDemotions) demote_queue_.pop_front();
    demote_queue_.emplace_back(entry.key(), entry.version);
    return;
  }
}

std::vector<FlashPlan> Directory::PlanDemotions(size_t max) {
  ExclusiveLock lock(this);
  std::vector<FlashPlan> plans;
  // Newest first: when puts outrun the write-behind, the oldest are the next
  // victims and would be evicted before their demotion lands; newer ones
  // stay long enough to be kept.
  while (plans.size() < max && !demote_queue_.empty()) {
    auto [key, version] = std::move(demote_queue_.back());
    demote_queue_.pop_back();
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second.version != version) continue;  // gone or replaced
    const ObjectEntry& entry = it->second;
    for (const ObjectCopy& copy : entry.copies) {
      NodeEntry* node = nodes_.Find(copy.node_id);
      if (node == nullptr || !node->up() || node->flash_capacity == 0 ||
          Holds(entry.flash, copy.node_id)) {
        continue;
      }
      plans.push_back({key, version, entry.length, entry.checksum, copy.node_id,
                       node->record.data_address, copy.offset});
      break;  // one flash copy is enough
    }
  }
  return plans;
}

void Directory::FinishDemotions(std::span<const FlashPlan> plans,
                                std::span<const absl::Status> results) {
  ExclusiveLock lock(this);
  CatalogBatch batch;
  std::vector<ObjectEntry*> demoted;
  for (size_t i = 0; i < plans.size(); ++i) {
    const FlashPlan& plan = plans[i];
    auto it = objects_.find(plan.key);
    // Evicted, removed or replaced meanwhile: the node's page is never
    // named again (reads name the version) and its LRU reclaims it.
    if (!results[i].ok() || it == objects_.end() || it->second.version != plan.version ||
        Holds(it->second.flash, plan.node_id) || nodes_.Find(plan.node_id) == nullptr) {
      continue;
    }
    Account(it->second, -1);
    it->second.flash.push_back(plan.node_id);
    Account(it->second, +1);
    batch.PutObject(plan.key, it->second);
  }
  // Not fsync'ed: a flash copy lost with the directory's machine is only an
  // eviction that drops instead of demoting.
  if (batch.empty()) return;
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist flash copies: %s", s.ToString());
  }
}

void Directory::KeepOnFlashOnly(ObjectEntry& entry) {
  Account(entry, -1);
  entry.copies.clear();
  objects_.Relist(entry);
  Account(entry, +1);
  for (NodeId id : entry.flash) {
    if (NodeEntry* node = nodes_.Find(id)) ++node->flash.demotions;
  }
}

absl::Status Directory::DropFlashCopies(std::span<const std::string> keys) {
  CatalogBatch batch;
  for (const std::string& key : keys) {
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second.flash.empty()) continue;
    if (it->second.copies.empty()) {
      batch.DeleteObject(key);
      continue;
    }
    ObjectRecord in_memory = it->second;
    in_memory.flash.clear();
    batch.PutObject(key, in_memory);
  }
  if (batch.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(catalog_->Write(batch).status());
  // The nodes' pages are never named again; their LRU reclaims them.
  for (const std::string& key : keys) {
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second.flash.empty()) continue;
    Account(it->second, -1);
    if (it->second.copies.empty()) {
      objects_.Erase(it);
      continue;
    }
    it->second.flash.clear();
    Account(it->second, +1);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Directory::ReserveForPromotion(NodeEntry& node, const ObjectEntry& entry) {
  std::vector<NodeId> others;
  for (auto& [id, n] : nodes_) {
    if (id != node.record.node_id) others.push_back(id);
  }
  // Makes room on that node if needed, evicting (and so demoting) colder
  // objects as a put would.
  RETURN_IF_ERROR(PlaceCopies(entry.key(), entry.length, 1, others).status());
  std::optional<uint64_t> offset = node.allocator.Allocate(entry.length);
  if (!offset.has_value()) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no room on %s to read '%s' back from flash", node.record.name, PrintableKey(entry.key())));
  }
  return *offset;
}

std::vector<FlashPlan> Directory::PlanPromotions(std::span<const std::string_view> keys,
                                                 bool prefix) {
  std::vector<FlashPlan> plans;
  {
    // Most lookups find everything in memory: decided under the shared lock.
    absl::ReaderMutexLock lock(&mu_);
    bool any = false;
    for (std::string_view key : keys) {
      auto it = objects_.find(key);
      if (it != objects_.end() && it->second.copies.empty()) any = true;
      if (any || (prefix && it == objects_.end())) break;
    }
    if (!any) return plans;
  }
  ExclusiveLock lock(this);
  for (std::string_view key : keys) {
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      if (prefix) break;
      continue;
    }
    ObjectEntry& entry = it->second;
    if (HasLiveCopy(entry)) continue;
    if (!HasLiveFlash(entry) || !entry.copies.empty()) {
      if (prefix) break;
      continue;
    }
    // Another lookup is reading it back: this one is served from flash
    // rather than waits.
    if (!promoting_.insert(std::string(key)).second) continue;
    absl::Status reserved = absl::NotFoundError("no node with flash is up");
    for (NodeId id : entry.flash) {
      NodeEntry* node = nodes_.Find(id);
      if (node == nullptr || !node->up() || node->flash_capacity == 0) continue;
      absl::StatusOr<uint64_t> offset = ReserveForPromotion(*node, entry);
      if (offset.ok()) {
        plans.push_back({std::string(key), entry.version, entry.length, entry.checksum, id,
                         node->record.data_address, *offset});
        reserved = absl::OkStatus();
        break;
      }
      reserved = offset.status();
    }
    if (!reserved.ok()) {
      // The lookup then has the node serve it straight from flash.
      promoting_.erase(key);
      LogWarning("'%s' stays on flash (served from there): %s", PrintableKey(key),
                 reserved.message());
    }
  }
  return plans;
}

void Directory::FinishPromotions(std::span<const FlashPlan> plans,
                                 std::span<const absl::Status> results) {
  ExclusiveLock lock(this);
  CatalogBatch batch;
  for (size_t i = 0; i < plans.size(); ++i) ApplyPromotion(plans[i], results[i], batch);
  // Not fsync'ed: after a crash the catalog says "on flash" and the memory
  // read into is unclaimed, which is consistent.
  if (!batch.empty()) {
    if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
      LogError("cannot persist promotions from flash: %s", s.ToString());
    }
  }
}

void Directory::ApplyPromotion(const FlashPlan& plan, const absl::Status& result,
                               CatalogBatch& batch) {
  promoting_.erase(plan.key);
  NodeEntry* node = nodes_.Find(plan.node_id);
  auto it = objects_.find(plan.key);
  bool same = it != objects_.end() && it->second.version == plan.version &&
              it->second.copies.empty() && Holds(it->second.flash, plan.node_id);
  if (!result.ok() || !same) {
    if (node != nullptr) node->allocator.Free(plan.offset, plan.length);
  }
  if (!same) return;  // removed or replaced meanwhile
  ObjectEntry& entry = it->second;
  if (result.ok()) {
    Account(entry, -1);
    entry.copies.push_back({plan.node_id, plan.offset});
    objects_.Relist(entry);
    Account(entry, +1);
    if (node != nullptr) ++node->flash.promotions;
    batch.PutObject(plan.key, entry);
    return;
  }
  if (!PageGone(result)) {
    LogWarning("reading '%s' back from flash on %s failed (kept on flash): %s",
               PrintableKey(plan.key), plan.address, result.message());
    return;
  }
  LogWarning("'%s' is no longer on the flash of %s (%s): dropped", PrintableKey(plan.key),
             plan.address, result.message());
  Account(entry, -1);
  std::erase(entry.flash, plan.node_id);
  if (node != nullptr) ++node->flash.drops;
  if (entry.flash.empty()) {
    batch.DeleteObject(plan.key);
    objects_.Erase(it);
    return;
  }
  Account(entry, +1);
  batch.PutObject(plan.key, entry);
}

}  // namespace unipool
