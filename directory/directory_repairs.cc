// Directory: repairs after faults (what is owed is kept by Repairs,
// repairs.h). The copies of a readmitted slab are verified and bad ones
// dropped; an object that lost a copy is given a new one; a node down past
// options.rereplicate_after is "repaired" the way a drain empties a node
// (directory_drain.cc plans the moves, the lifecycle worker copies node to
// node), reading each object from a live copy.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/directory/directory.h"

namespace unipool {

std::optional<VerifyPlan> Directory::PlanVerification() {
  ExclusiveLock lock(this);
  auto taken = repairs_.TakeVerification(
      [&](NodeId id) ABSL_SHARED_LOCKS_REQUIRED(mu_) { return nodes_.IsUp(id); });
  if (!taken.has_value()) return std::nullopt;
  const NodeEntry& node = *nodes_.Find(taken->first);
  VerifyPlan plan;
  plan.node_id = taken->first;
  plan.slab_id = node.record.slab_id;
  plan.address = node.record.data_address;
  plan.items = std::move(taken->second);
  return plan;
}

void Directory::FinishVerification(const VerifyPlan& plan, const absl::Status& result,
                                   std::span<const VerifyItem> bad) {
  uint64_t ticket = 0;
  {
    ExclusiveLock lock(this);
    NodeEntry* node = nodes_.Find(plan.node_id);
    if (node == nullptr || node->record.slab_id != plan.slab_id ||
        !repairs_.StopVerifying(plan.node_id)) {
      return;
    }
    if (!result.ok()) {
      LogWarning("cannot verify the slab of node %s yet: %s", node->record.name, result.ToString());
      return;  // planned again while the node stays unverified
    }
    uint64_t dropped = 0, lost = 0;
    if (absl::Status s = DropBadCopies(plan, bad, dropped, lost, ticket); !s.ok()) {
      LogError("%s", s.message());
      return;
    }
    repairs_.Verified(plan.node_id);
    // Bad copies the catalog no longer placed there (removed, evicted, moved
    // since the readmission) are neither verified nor dropped.
    uint64_t gone = bad.size() - dropped;
    uint64_t verified = plan.items.size() - bad.size();
    std::string line = absl::StrFormat(
        "node %u %s readmitted: %u copies checked: %u verified, %u failed their checksum and "
        "were dropped (%u objects had no other copy), %u failed but were already gone",
        plan.node_id, node->record.name, plan.items.size(), verified, dropped, lost, gone);
    if (dropped == 0) {
      LogInfo("%s", line);
    } else {
      LogWarning("%s", line);
    }
  }
  if (absl::Status s = catalog_->AwaitDurable(ticket); !s.ok()) {
    LogError("cannot fsync dropped copies: %s", s.ToString());
  }
}

absl::Status Directory::DropBadCopies(const VerifyPlan& plan, std::span<const VerifyItem> bad,
                                      uint64_t& dropped, uint64_t& lost, uint64_t& ticket) {
  CatalogBatch batch;
  std::vector<VerifyItem> drops;
  std::vector<Release> releases;
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
    drops.push_back(item);
    // The bytes are wrong, but a reader's capability for them may still
    // work: held as any released copy.
    releases.push_back(PlanRelease({ObjectCopy{plan.node_id, item.offset}}, item.length,
                                   it->second.hold_until_unix_ms(), batch));
  }
  if (!batch.empty()) {
    absl::StatusOr<uint64_t> written = catalog_->Write(batch);
    if (!written.ok()) {
      return absl::Status(
          written.status().code(),
          absl::StrFormat("cannot persist dropped copies: %s", written.status().message()));
    }
    ticket = *written;
  }
  for (const VerifyItem& drop : drops) {
    auto it = objects_.find(drop.key);
    ObjectCopy bad_copy{plan.node_id, drop.offset};
    std::vector<ObjectCopy> copies = CopiesOf(it->second);
    copies.erase(std::find(copies.begin(), copies.end(), bad_copy));
    Account(it->second, -1);
    if (copies.empty()) {
      objects_.Erase(it);
      ++lost;
    } else {
      SetCopies(it->second, copies);
      Account(it->second, +1);
      repairs_.RemakeLater({drop.key, drop.version});
    }
  }
  for (const Release& release : releases) ApplyRelease(release);
  dropped = drops.size();
  return absl::OkStatus();
}

std::vector<VerifyItem> Directory::CopiesToVerify(NodeId id) {
  std::vector<VerifyItem> items;
  for (const auto& [key, entry] : objects_) {
    for (const ObjectCopy& copy : CopiesOf(entry)) {
      if (copy.node_id == id) {
        items.push_back({key, entry.version, copy.offset, entry.length, entry.checksum});
      }
    }
  }
  return items;
}

void Directory::PlanRepairs(int64_t now_ms) {
  absl::Time now = options_.clock();
  bool any_not_up = false;
  for (auto& [id, node] : nodes_) {
    bool due = node->health.state() == Liveness::kDown &&
               now - node->health.down_since() >= options_.rereplicate_after &&
               !node->record.draining && node->objects > 0;
    any_not_up |= !node->up();
    if (due && repairs_.StartRepair(id, now_ms)) {
      LogWarning("node %u %s down for %s: re-replicating its %u copies from their other copies", id,
                 node->record.name, absl::FormatDuration(now - node->health.down_since()),
                 node->objects);
      drains_.Begin(id, KeysWithCopyOn(id, /*skip_moving=*/true));
    } else if (!due && repairs_.Repairing(id) && (node->up() || node->objects == 0)) {
      repairs_.EndRepair(id);
      if (!node->record.draining) drains_.End(id);
      LogInfo("node %u %s: re-replication off it ended (%s; %u copies left on it)", id,
              node->record.name, node->up() ? "it is up again" : "nothing left to copy",
              node->objects);
    }
  }
  uint64_t changes = nodes_.liveness_changes();
  if (!repairs_.RecountDue(now_ms, changes)) return;
  repairs_.Recounted(any_not_up ? CountUnderReplicated() : 0, now_ms, changes);
}

void Directory::PlanRemadeCopies(size_t max, int64_t deadline_unix_ms, CatalogBatch& batch,
                                 std::vector<MovePlan>& plans, uint64_t& byte_budget) {
  std::vector<Remake> later;
  while (plans.size() < max && byte_budget > 0) {
    std::optional<Remake> next = repairs_.NextRemake();
    if (!next.has_value()) break;
    auto& [key, version] = *next;
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second.version != version) continue;  // gone, or replaced
    std::vector<NodeId> exclude;
    std::optional<ObjectCopy> source;
    for (const ObjectCopy& copy : CopiesOf(it->second)) {
      exclude.push_back(copy.node_id);
      NodeEntry* node = nodes_.Find(copy.node_id);
      if (!source.has_value() && node != nullptr && node->up()) source = copy;
    }
    absl::StatusOr<std::vector<NodeEntry*>> target =
        source.has_value() ? PlaceCopies(key, it->second.length, 1, exclude)
                           : absl::UnavailableError("no copy on a live node");
    if (!target.ok()) {
      later.push_back(std::move(*next));  // no room or no source yet
      continue;
    }
    // PlaceCopies never evicts this object: its nodes were excluded.
    MovePlan plan = PlanCopy(key, it->second, *source, *(*target)[0], deadline_unix_ms, batch);
    plan.new_copy = true;
    plan.repair = true;
    byte_budget -= std::min(byte_budget, plan.length);
    plans.push_back(std::move(plan));
  }
  for (Remake& remake : later) repairs_.RemakeLater(std::move(remake));
}

uint64_t Directory::CountUnderReplicated() {
  uint64_t count = 0;
  for (const auto& [key, entry] : objects_) {
    for (const ObjectCopy& copy : CopiesOf(entry)) {
      NodeEntry* node = nodes_.Find(copy.node_id);
      if (node == nullptr || !node->up()) {
        ++count;
        break;
      }
    }
  }
  return count;
}

}  // namespace unipool
