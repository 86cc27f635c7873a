// Directory: its nodes. Registration (admission by NodeRegistry, then a
// readmitted slab keeps its copies and a new one loses them), heartbeats,
// nodes a client could not reach (suspect, then probed), nodes forgotten
// after a long absence, and the wait for known nodes after a restart.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/auth.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {
absl::StatusOr<RegistrationResult> Directory::RegisterNode(const NodeRegistration& reg) {
  RETURN_IF_ERROR(ValidateRegistration(reg));
  uint64_t ticket = 0;
  RegistrationResult result;
  {
    ExclusiveLock lock(this);
    ASSIGN_OR_RETURN(result, AdmitNode(reg, ticket));
  }
  RETURN_IF_ERROR(catalog_->AwaitDurable(ticket));
  return result;
}

absl::StatusOr<RegistrationResult> Directory::AdmitNode(const NodeRegistration& reg,
                                                        uint64_t& ticket) {
  RegistrationResult result;
  ASSIGN_OR_RETURN(NodeEntry * node, nodes_.Claim(reg, pool_id_));
  CatalogBatch batch;
  if (node != nullptr && node->record.slab_id == reg.slab_id &&
      node->record.slab_size == reg.slab_size) {
    result.readmitted = true;
  } else if (node != nullptr) {
    // The node restarted with new memory: whatever it held is gone.
    result.objects_dropped = DropNodeContents(node->record.node_id, batch);
    node->allocator = SlabAllocator(reg.slab_size);
  } else {
    node = &nodes_.Add(reg.slab_size, options_.clock());
  }
  NodeRecord& record = node->record;
  record.name = reg.name;
  record.host = reg.host;
  record.data_address = reg.data_address;
  record.slab_id = reg.slab_id;
  record.slab_size = reg.slab_size;
  record.transports = reg.transports;
  if (record.identity_digest.empty()) record.identity_digest = NodeIdentityDigest(reg.identity);
  record.last_seen_unix_ms = absl::ToUnixMillis(options_.clock());
  batch.PutNode(record);
  ASSIGN_OR_RETURN(ticket, catalog_->Write(batch));
  node->huge_pages = reg.huge_pages;
  node->rdma_ports = reg.rdma_ports;
  node->flash_capacity = reg.flash_capacity;
  if (reg.flash_capacity > 0) flash_in_use_.store(true, std::memory_order_relaxed);
  node->registered_since_start = true;
  // A readmitted slab's copies are checksummed before they are trusted again
  // (the service runs PlanVerification); readers verify every read anyway.
  repairs_.Readmitted(record.node_id, result.readmitted ? CopiesToVerify(record.node_id)
                                                        : std::vector<VerifyItem>{});
  heard_.Note(record.node_id, options_.clock(), /*only_if_known=*/false);
  result.node_id = record.node_id;
  result.pool_id = pool_id_;
  if (!result.readmitted && result.objects_dropped > 0) {
    LogWarning("node %s came back with a new slab: %u objects lost (copies elsewhere kept)",
               reg.name, result.objects_dropped);
  }
  LogInfo("node %u %s registered: %s at %s, slab %s, %u copies%s%s", record.node_id, record.name,
          result.readmitted ? "readmitted" : "admitted", record.data_address,
          FormatSize(record.slab_size), node->objects,
          repairs_.Unverified(record.node_id) ? " kept, to verify" : "",
          record.draining ? " (draining)" : "");
  nodes_.LogTransition(*node, node->health.Registered(options_.clock()));
  return result;
}

uint64_t Directory::DropNodeContents(NodeId id, CatalogBatch& batch) {
  NodeEntry* node = nodes_.Find(id);
  uint64_t lost = 0;
  std::vector<std::string> gone;
  for (auto it = objects_.begin(); it != objects_.end(); ++it) {
    ObjectEntry& entry = it->second;
    std::vector<ObjectCopy> copies = CopiesOf(entry);
    auto on_node = std::find_if(copies.begin(), copies.end(),
                                [&](const ObjectCopy& c) { return c.node_id == id; });
    if (on_node == copies.end()) continue;
    Account(entry, -1);
    copies.erase(on_node);
    if (copies.empty() && entry.flash.empty()) {
      batch.DeleteObject(it->first);
      gone.push_back(it->first);
      ++lost;
      continue;
    }
    // Flash copies outlive the memory (this node's too: its flash survives
    // a restart, and a lookup finds out whether each page is still there).
    SetCopies(entry, copies);
    if (copies.empty()) objects_.Relist(entry);
    Account(entry, +1);
    batch.PutObject(it->first, entry);
  }
  for (const std::string& key : gone) objects_.Erase(objects_.find(key));
  for (uint64_t put_id : reservations_.WithCopyOn(id)) {
    PendingPut& pending = *reservations_.Find(put_id);
    std::vector<ObjectCopy> copies = CopiesOf(pending);
    std::erase_if(copies, [&](const ObjectCopy& c) { return c.node_id == id; });
    if (copies.empty()) {
      batch.DeletePending(put_id);
      reservations_.Take(put_id);
    } else {
      SetCopies(pending, copies);
      batch.PutPending(pending);
    }
  }
  for (uint64_t held_id : held_.DropNode(id)) batch.DeleteHeld(held_id);
  node->objects = 0;
  node->pinned = 0;
  node->held_bytes = 0;
  repairs_.ClearVerification(id);
  drains_.DropQueue(id);
  return lost;
}

absl::Status Directory::Heartbeat(NodeId node_id, uint64_t slab_id, const NodeCounters& counters,
                                  bool rdma_link_down,
                                  const std::vector<RdmaPortInfo>* rdma_ports) {
  // Before waiting for mu_: Tick must see the beat even if a catalog write
  // holds mu_ for a while.
  absl::Time arrived = options_.clock();
  heard_.Note(node_id, arrived, /*only_if_known=*/true);
  ExclusiveLock lock(this);
  NodeEntry* node = nodes_.Find(node_id);
  if (node == nullptr || node->record.slab_id != slab_id) {
    return absl::NotFoundError(
        absl::StrFormat("node %u with this slab is not registered", node_id));
  }
  heard_.Note(node_id, arrived, /*only_if_known=*/false);  // now known to be real
  node->counters = counters;
  if (rdma_ports != nullptr) node->rdma_ports = *rdma_ports;
  std::optional<Transition> t = node->health.Heartbeat(rdma_link_down, arrived);
  nodes_.LogTransition(*node, t);
  if (t.has_value() && t->to == Liveness::kSuspect) RequestProbe();
  return absl::OkStatus();
}

void Directory::MarkSilentNodesDown(absl::Time now) {
  for (auto& [id, node] : nodes_) {
    absl::Duration silence = now - heard_.LastHeard(id);
    if (silence > options_.node_timeout) {
      nodes_.LogTransition(*node, node->health.TimedOut(silence, now));
    }
  }
}

void Directory::ForgetGoneNodes(absl::Time now, CatalogBatch& batch) {
  // Last-seen times are refreshed in the catalog this often while a node is
  // up: a restarted directory then knows roughly when each node left.
  absl::Duration refresh = std::min(options_.forget_node_after / 4, absl::Hours(1));
  std::vector<NodeId> gone;
  for (auto& [id, node] : nodes_) {
    absl::Time seen = std::max(
        {absl::FromUnixMillis(node->record.last_seen_unix_ms), heard_.LastHeard(id), started_});
    if (node->up()) {
      if (now - absl::FromUnixMillis(node->record.last_seen_unix_ms) > refresh) {
        node->record.last_seen_unix_ms = absl::ToUnixMillis(now);
        batch.PutNode(node->record);
      }
    } else if (now - seen > options_.forget_node_after) {
      gone.push_back(id);
    }
  }
  for (NodeId id : gone) {
    NodeEntry* node = nodes_.Find(id);
    uint64_t lost = DropNodeContents(id, batch);
    batch.DeleteNode(id);
    LogWarning(
        "node %u %s forgotten: not heard from for over %s; %u objects with no other copy "
        "dropped",
        id, node->record.name, absl::FormatDuration(options_.forget_node_after), lost);
    repairs_.EndRepair(id);
    nodes_.Erase(id);
    heard_.Forget(id);
  }
}

void Directory::ReportUnreachable(std::span<const NodeId> ids) {
  if (ids.empty()) return;
  bool wanted = false;
  {
    ExclusiveLock lock(this);
    absl::Time now = options_.clock();
    for (NodeId id : ids) {
      NodeEntry* node = nodes_.Find(id);
      if (node == nullptr) continue;
      std::optional<Transition> t = node->health.Reported(now);
      nodes_.LogTransition(*node, t);
      wanted |= t.has_value();
    }
  }
  if (wanted) RequestProbe();
}

void Directory::RequestProbe() {
  absl::MutexLock lock(&probe_mu_);
  ++probes_requested_;
}

std::vector<ProbePlan> Directory::TakeProbes(absl::Duration timeout) {
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
  NodeEntry* node = nodes_.Find(plan.node_id);
  if (node == nullptr) return;
  nodes_.LogTransition(
      *node, node->health.ProbeFinished(plan.epoch, result.ok(), std::string(result.message()),
                                        options_.clock()));
}

bool Directory::MayAwaitRestartedNodes() {
  if (restart_settled_.load(std::memory_order_acquire)) return false;
  absl::ReaderMutexLock lock(&mu_);
  bool pending = nodes_.AwaitingRestarted(absl::Now());
  if (!pending) restart_settled_.store(true, std::memory_order_release);
  return pending;
}

void Directory::AwaitRestartedNodes(const std::function<bool()>& waiting) {
  auto pending = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return nodes_.AwaitingRestarted(absl::Now()) && waiting();
  };
  if (!pending()) return;
  // Await blocks until its condition holds: here, until nothing is pending.
  // Registrations unlock mu_, which re-evaluates it.
  auto settled = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !pending(); };
  mu_.AwaitWithDeadline(absl::Condition(&settled), nodes_.restart_wait_until());
}

}  // namespace unipool
