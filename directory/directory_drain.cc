// Directory: draining nodes. Drain marks a node; PlanMoves hands the service
// copies to move off draining (and repaired) nodes, each with its target
// reserved (a held extent); FinishMove publishes a finished move. What to
// move next and what is in flight is kept by the DrainTracker
// (drain_tracker.h).
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {

absl::StatusOr<DrainProgress> Directory::Drain(std::string_view name, bool undrain) {
  uint64_t ticket = 0;
  DrainProgress progress;
  {
    ExclusiveLock lock(this);
    NodeEntry* node = nodes_.FindByNameOrAddress(name);
    if (node == nullptr) {
      return absl::NotFoundError(absl::StrFormat("no node named '%s' in the pool", name));
    }
    if (node->record.draining == undrain) {
      NodeRecord record = node->record;
      record.draining = !undrain;
      CatalogBatch batch;
      batch.PutNode(record);
      ASSIGN_OR_RETURN(ticket, catalog_->Write(batch));
      node->record.draining = !undrain;
      NodeId id = node->record.node_id;
      if (undrain) {
        drains_.End(id);
        LogInfo("node %u %s undrained: it takes new objects again", id, node->record.name);
      } else {
        drains_.Begin(id, KeysWithCopyOn(id, /*skip_moving=*/false));
        LogInfo("node %u %s draining: %u copies (%s) to move", id, node->record.name, node->objects,
                FormatSize(node->allocator.used()));
      }
    }
    progress = ProgressOf(*node);
  }
  RETURN_IF_ERROR(catalog_->AwaitDurable(ticket));
  return progress;
}

DrainProgress Directory::ProgressOf(const NodeEntry& node) {
  DrainProgress progress;
  progress.node_id = node.record.node_id;
  progress.name = node.record.name;
  progress.draining = node.record.draining;
  progress.objects = node.objects;
  progress.used = node.allocator.used();
  progress.moves_in_flight = drains_.MovesInFlight(node.record.node_id);
  progress.done = node.record.draining && progress.used == 0;
  progress.blocked = drains_.Blocked(node.record.node_id);
  return progress;
}

void Directory::QueueIfDraining(const ObjectEntry& entry) {
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    NodeEntry* node = nodes_.Find(copy.node_id);
    if (node != nullptr && node->record.draining) drains_.Queue(copy.node_id, entry.key());
  }
}

std::vector<std::string> Directory::KeysWithCopyOn(NodeId id, bool skip_moving) {
  std::vector<std::string> keys;
  for (const auto& [key, entry] : objects_) {
    if (skip_moving && drains_.IsMoving(key)) continue;
    for (const ObjectCopy& copy : CopiesOf(entry)) {
      if (copy.node_id == id) keys.push_back(key);
    }
  }
  return keys;
}

std::vector<MovePlan> Directory::PlanMoves(size_t max) {
  std::vector<MovePlan> plans;
  ExclusiveLock lock(this);
  int64_t now_ms = NowMs();
  int64_t deadline = absl::ToUnixMillis(options_.clock() + options_.put_timeout);
  CatalogBatch batch;
  PlanRepairs(now_ms);
  const uint64_t repair_tokens = repairs_.Budget(now_ms);
  uint64_t repair_budget = repair_tokens;
  for (auto& [id, node] : nodes_) {
    if (plans.size() >= max) break;
    if (node->record.draining) {
      PlanNodeMoves(*node, max, now_ms, deadline, batch, plans);
    } else if (repairs_.Repairing(id) && repair_budget > 0) {
      // Re-replication is rate-limited: at most the budget's bytes planned.
      size_t before = plans.size();
      PlanNodeMoves(*node, max, now_ms, deadline, batch, plans, &repair_budget);
      for (size_t i = before; i < plans.size(); ++i) plans[i].repair = true;
    }
  }
  PlanRemadeCopies(max, deadline, batch, plans, repair_budget);
  repairs_.Spend(repair_tokens - repair_budget);
  if (batch.empty()) return plans;
  batch.PutNextVersion(next_version_);
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist move reservations: %s", s.ToString());
    for (const MovePlan& plan : plans) {
      held_.Release(plan.move_id, nodes_);
      if (plan.new_copy) {
        repairs_.RemakeLater({plan.key, plan.version});
      } else {
        drains_.MoveEnded(plan.from_node, plan.key, plan.move_id);
      }
    }
    return {};
  }
  return plans;
}

void Directory::PlanNodeMoves(NodeEntry& node, size_t max, int64_t now_ms, int64_t deadline_unix_ms,
                              CatalogBatch& batch, std::vector<MovePlan>& plans,
                              uint64_t* byte_budget) {
  NodeId id = node.record.node_id;
  if (drains_.RescanDue(id, node.objects, now_ms)) {
    // Copies that were not queued (committed late, failed moves, stuck).
    for (std::string& key : KeysWithCopyOn(id, /*skip_moving=*/true)) {
      drains_.Queue(id, std::move(key));
    }
  }
  size_t planned_before = plans.size();
  uint64_t stuck = 0;
  absl::Status blocked;
  while (plans.size() < max && (byte_budget == nullptr || *byte_budget > 0)) {
    std::optional<std::string> key = drains_.Next(id);
    if (!key.has_value()) break;
    size_t before = plans.size();
    MoveOutcome outcome = PlanMove(node, *key, deadline_unix_ms, batch, plans);
    if (byte_budget != nullptr && plans.size() > before) {
      *byte_budget -= std::min(*byte_budget, plans.back().length);
    }
    if (outcome.stuck) ++stuck;
    if (!outcome.blocked.ok()) {
      blocked = outcome.blocked;
      drains_.QueueFirst(id, std::move(*key));
      break;
    }
  }
  if (!blocked.ok()) {
    drains_.SetBlocked(id, blocked);
  } else if (stuck > 0) {
    drains_.SetBlocked(id, absl::FailedPreconditionError(absl::StrFormat(
                               "node %s is down and %u of its objects have no copy on a live "
                               "node: bring it back up, or remove them",
                               node.record.name, stuck)));
  } else if (plans.size() > planned_before || node.objects == 0) {
    drains_.SetBlocked(id, absl::OkStatus());
  }
}

Directory::MoveOutcome Directory::PlanMove(NodeEntry& node, const std::string& key,
                                           int64_t deadline_unix_ms, CatalogBatch& batch,
                                           std::vector<MovePlan>& plans) {
  NodeId id = node.record.node_id;
  auto it = objects_.find(key);
  if (it == objects_.end()) return MoveOutcome{};
  ObjectEntry& entry = it->second;
  std::vector<ObjectCopy> copies = CopiesOf(entry);
  auto from = std::find_if(copies.begin(), copies.end(),
                           [&](const ObjectCopy& c) { return c.node_id == id; });
  if (from == copies.end()) return MoveOutcome{};
  std::optional<ObjectCopy> source = ChooseMoveSource(
      copies, id, [&](NodeId n) ABSL_SHARED_LOCKS_REQUIRED(mu_) { return nodes_.IsUp(n); });
  if (!source.has_value()) return MoveOutcome{.stuck = true};
  std::vector<NodeId> exclude;
  for (const ObjectCopy& c : copies) exclude.push_back(c.node_id);
  absl::StatusOr<std::vector<NodeEntry*>> target = PlaceCopies(key, entry.length, 1, exclude);
  if (!target.ok()) {
    return MoveOutcome{.blocked = absl::Status(
                           target.status().code(),
                           absl::StrFormat("drain of %s cannot move '%s': %s", node.record.name,
                                           PrintableKey(key), target.status().message()))};
  }
  // PlaceCopies may have evicted objects, never this one (its copies' nodes
  // were excluded), so `entry` is still valid.
  MovePlan plan = PlanCopy(key, entry, *source, *(*target)[0], deadline_unix_ms, batch);
  plan.from_node = id;
  plan.from_offset = from->offset;
  drains_.MoveStarted(id, key, plan.move_id);
  plans.push_back(std::move(plan));
  return MoveOutcome{};
}

MovePlan Directory::PlanCopy(const std::string& key, const ObjectEntry& entry,
                             const ObjectCopy& source, NodeEntry& to, int64_t deadline_unix_ms,
                             CatalogBatch& batch) {
  HeldExtent held{next_version_++, to.record.node_id, *to.allocator.Allocate(entry.length),
                  entry.length, deadline_unix_ms};
  batch.PutHeld(held);
  held_.Add(held, nodes_);
  MovePlan plan;
  plan.move_id = held.id;
  plan.key = key;
  plan.version = entry.version;
  plan.length = entry.length;
  plan.checksum = entry.checksum;
  plan.source_node = source.node_id;
  plan.source_address = nodes_.Find(source.node_id)->record.data_address;
  plan.source_offset = source.offset;
  plan.target_node = to.record.node_id;
  plan.target_address = to.record.data_address;
  plan.target_offset = held.offset;
  plan.copy_capability = Grant(*nodes_.Find(source.node_id),
                               {.offset = source.offset,
                                .length = entry.length,
                                .access = wire::Access::Copy,
                                .copy_target = plan.target_address,
                                .copy_target_offset = held.offset},
                               deadline_unix_ms);
  plan.target_capability =
      Grant(to, {.offset = held.offset, .length = entry.length, .access = wire::Access::Write},
            deadline_unix_ms);
  return plan;
}

void Directory::FinishMove(const MovePlan& plan, bool copied) {
  uint64_t ticket = 0;
  {
    ExclusiveLock lock(this);
    ticket = PublishMove(plan, copied);
  }
  if (absl::Status s = catalog_->AwaitDurable(ticket); !s.ok()) {
    LogError("cannot fsync a move of '%s': %s", PrintableKey(plan.key), s.ToString());
  }
}

uint64_t Directory::PublishMove(const MovePlan& plan, bool copied) {
  NodeEntry* from = plan.new_copy ? nullptr : nodes_.Find(plan.from_node);
  if (!plan.new_copy) drains_.MoveEnded(plan.from_node, plan.key, plan.move_id);
  if (held_.Find(plan.move_id) == nullptr) return 0;  // expired, or the target lost its slab
  auto it = objects_.find(plan.key);
  std::vector<ObjectCopy> copies;
  bool current = false;
  if (it != objects_.end() && it->second.version == plan.version) {
    copies = CopiesOf(it->second);
    current = plan.new_copy
                  ? std::none_of(copies.begin(), copies.end(),
                                 [&](const ObjectCopy& c) { return c.node_id == plan.target_node; })
                  : std::find(copies.begin(), copies.end(),
                              ObjectCopy{plan.from_node, plan.from_offset}) != copies.end();
  }
  CatalogBatch batch;
  batch.DeleteHeld(plan.move_id);
  if (!copied || !current) {
    // Nobody can know the target's bytes: free them at once.
    if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
      LogError("cannot persist a cancelled move: %s", s.ToString());
    }
    held_.Release(plan.move_id, nodes_);
    if (!copied && plan.new_copy && current) repairs_.RemakeLater({plan.key, plan.version});
    if (!copied && from != nullptr && it != objects_.end() &&
        (from->record.draining || repairs_.Repairing(plan.from_node))) {
      drains_.Queue(plan.from_node, plan.key);  // try again
    }
    return 0;
  }
  ObjectEntry& entry = it->second;
  std::vector<ObjectCopy> replaced;
  if (plan.new_copy) {
    copies.push_back({plan.target_node, plan.target_offset});
  } else {
    for (ObjectCopy& c : copies) {
      if (c == ObjectCopy{plan.from_node, plan.from_offset})
        c = {plan.target_node, plan.target_offset};
    }
    replaced.push_back({plan.from_node, plan.from_offset});
  }
  ObjectRecord moved = entry;
  SetCopies(moved, copies);
  batch.PutObject(plan.key, moved);
  Release old = PlanRelease(replaced, entry.length, entry.hold_until_unix_ms(), batch);
  absl::StatusOr<uint64_t> written = catalog_->Write(batch);
  if (!written.ok()) {
    LogError("cannot persist a move of '%s': %s", PrintableKey(plan.key),
             written.status().ToString());
    held_.Release(plan.move_id, nodes_);
    return 0;
  }
  // The target's space now belongs to the object: no longer held.
  held_.Adopt(plan.move_id, nodes_);
  if (plan.repair) repairs_.CountRereplicated();
  Account(entry, -1);
  SetCopies(entry, copies);
  Account(entry, +1);
  ApplyRelease(old);
  return *written;
}

}  // namespace unipool
