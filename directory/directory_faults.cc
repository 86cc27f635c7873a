// Directory: faults. Nodes a client could not reach (suspect, then probed),
// the wait for known nodes after a restart, and re-replication planning: a
// node down past options.rereplicate_after is "repaired" the way a drain
// empties a node (directory_drain.cc plans the moves, the lifecycle worker
// copies node to node), reading each object from a live copy.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "unipool/common/log.h"
#include "unipool/directory/directory.h"

namespace unipool {
namespace {

// Under-replicated objects are recounted (a scan of the map) at most this
// often, and only while some node is not up.
constexpr int64_t kRepairScanMs = 1000;
// The repair byte budget never banks more than this many seconds of rate.
constexpr uint64_t kRepairBurstSeconds = 1;

}  // namespace

void Directory::LogTransition(const Node& node, const std::optional<Transition>& t) {
  if (!t.has_value()) return;
  liveness_changes_.fetch_add(1, std::memory_order_relaxed);
  std::string line = absl::StrFormat("node %u %s: %s -> %s (%s); %u copies on it",
                                     node.record.node_id, node.record.name, LivenessName(t->from),
                                     LivenessName(t->to), t->reason, node.objects);
  if (t->to == Liveness::kUp) {
    LogInfo("%s", line);
  } else {
    LogWarning("%s", line);
  }
}

void Directory::ReportUnreachable(std::span<const NodeId> ids) {
  if (ids.empty()) return;
  bool wanted = false;
  {
    ExclusiveLock lock(this);
    absl::Time now = options_.clock();
    for (NodeId id : ids) {
      Node* node = FindNode(id);
      if (node == nullptr) continue;
      std::optional<Transition> t = node->health.Reported(now);
      LogTransition(*node, t);
      wanted |= t.has_value();
    }
  }
  if (wanted) {
    absl::MutexLock lock(&probe_mu_);
    ++probes_requested_;
  }
}

std::vector<Directory::ProbePlan> Directory::TakeProbes(absl::Duration timeout) {
  {
    absl::MutexLock lock(&probe_mu_);
    auto requested = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(probe_mu_) {
      return probes_requested_ != probes_taken_;
    };
    probe_mu_.AwaitWithTimeout(absl::Condition(&requested), timeout);
    probes_taken_ = probes_requested_;
  }
  // Also picks up probes a heartbeat made due (no request counted for them).
  std::vector<ProbePlan> plans;
  ExclusiveLock lock(this);
  for (auto& [id, node] : nodes_) {
    if (!node->health.probe_due()) continue;
    node->health.ProbeTaken();
    plans.push_back({id, node->record.data_address, node->health.probe_epoch()});
  }
  return plans;
}

void Directory::FinishProbe(const ProbePlan& plan, const absl::Status& result) {
  ExclusiveLock lock(this);
  Node* node = FindNode(plan.node_id);
  if (node == nullptr) return;
  LogTransition(*node, node->health.ProbeFinished(plan.epoch, result.ok(),
                                                  std::string(result.message()), options_.clock()));
}

bool Directory::MayAwaitRestartedNodes() {
  if (restart_settled_.load(std::memory_order_acquire)) return false;
  absl::ReaderMutexLock lock(&mu_);
  bool pending = false;
  if (absl::Now() < restart_wait_until_) {
    for (const auto& [id, node] : nodes_) pending |= !node->registered_since_start;
  }
  if (!pending) restart_settled_.store(true, std::memory_order_release);
  return pending;
}

void Directory::AwaitRestartedNodes(const std::function<bool()>& waiting) {
  auto pending = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (absl::Now() >= restart_wait_until_ || !waiting()) return false;
    for (const auto& [id, node] : nodes_) {
      if (!node->registered_since_start) return true;
    }
    return false;
  };
  if (!pending()) return;
  // Await blocks until its condition holds: here, until nothing is pending.
  // Registrations unlock mu_, which re-evaluates it.
  auto settled = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !pending(); };
  mu_.AwaitWithDeadline(absl::Condition(&settled), restart_wait_until_);
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

uint64_t Directory::RepairBudget(int64_t now_ms) {
  uint64_t rate = options_.rereplicate_bytes_per_second;
  int64_t elapsed = std::max<int64_t>(0, now_ms - repair_refill_ms_);
  repair_refill_ms_ = now_ms;
  repair_tokens_ = std::min(rate * kRepairBurstSeconds,
                            repair_tokens_ + rate / 1000 * static_cast<uint64_t>(elapsed));
  return repair_tokens_;
}

void Directory::PlanRepairs(int64_t now_ms) {
  absl::Time now = options_.clock();
  bool any_not_up = false;
  for (auto& [id, node] : nodes_) {
    bool due = node->health.state() == Liveness::kDown &&
               now - node->health.down_since() >= options_.rereplicate_after &&
               !node->record.draining && node->objects > 0;
    any_not_up |= !node->up();
    if (due && repairing_.empty()) {
      // The first repair starts with a full bucket (one second's bytes).
      repair_tokens_ = options_.rereplicate_bytes_per_second * kRepairBurstSeconds;
      repair_refill_ms_ = now_ms;
    }
    if (due && repairing_.insert(id).second) {
      LogWarning("node %u %s down for %s: re-replicating its %u copies from their other copies", id,
                 node->record.name, absl::FormatDuration(now - node->health.down_since()),
                 node->objects);
      drains_.Begin(id, KeysWithCopyOn(id, /*skip_moving=*/true));
    } else if (!due && repairing_.contains(id) && (node->up() || node->objects == 0)) {
      repairing_.erase(id);
      if (!node->record.draining) drains_.End(id);
      LogInfo("node %u %s: re-replication off it ended (%s; %u copies left on it)", id,
              node->record.name, node->up() ? "it is up again" : "nothing left to copy",
              node->objects);
    }
  }
  uint64_t changes = liveness_changes_.load(std::memory_order_relaxed);
  if (now_ms < next_repair_scan_ms_ && changes == scanned_changes_) return;
  next_repair_scan_ms_ = now_ms + kRepairScanMs;
  scanned_changes_ = changes;
  under_replicated_ = any_not_up ? CountUnderReplicated() : 0;
}

void Directory::PlanRemadeCopies(size_t max, int64_t deadline_unix_ms, CatalogBatch& batch,
                                 std::vector<MovePlan>& plans, uint64_t& byte_budget) {
  std::vector<std::pair<std::string, uint64_t>> later;
  while (plans.size() < max && byte_budget > 0 && !copies_to_remake_.empty()) {
    auto [key, version] = std::move(copies_to_remake_.front());
    copies_to_remake_.pop_front();
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second.version != version) continue;  // gone, or replaced
    std::vector<NodeId> exclude;
    std::optional<ObjectCopy> source;
    for (const ObjectCopy& copy : CopiesOf(it->second)) {
      exclude.push_back(copy.node_id);
      Node* node = FindNode(copy.node_id);
      if (!source.has_value() && node != nullptr && node->up()) source = copy;
    }
    absl::StatusOr<std::vector<Node*>> target =
        source.has_value() ? PlaceCopies(key, it->second.length, 1, exclude)
                           : absl::UnavailableError("no copy on a live node");
    if (!target.ok()) {
      later.emplace_back(std::move(key), version);  // no room or no source yet
      continue;
    }
    // PlaceCopies never evicts this object: its nodes were excluded.
    MovePlan plan = PlanCopy(key, it->second, *source, *(*target)[0], deadline_unix_ms, batch);
    plan.new_copy = true;
    plan.repair = true;
    byte_budget -= std::min(byte_budget, plan.length);
    plans.push_back(std::move(plan));
  }
  for (auto& item : later) copies_to_remake_.push_back(std::move(item));
}

uint64_t Directory::CountUnderReplicated() {
  uint64_t count = 0;
  for (const auto& [key, entry] : objects_) {
    for (const ObjectCopy& copy : CopiesOf(entry)) {
      Node* node = FindNode(copy.node_id);
      if (node == nullptr || !node->up()) {
        ++count;
        break;
      }
    }
  }
  return count;
}

}  // namespace unipool
