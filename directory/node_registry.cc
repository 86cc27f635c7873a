#include "unipool/directory/node_registry.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "unipool/common/auth.h"
#include "unipool/common/log.h"
#include "unipool/common/units.h"

namespace unipool {
namespace {

absl::Status FieldTooLong(std::string_view field, size_t bytes, size_t limit) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "node registration refused: %s of %u bytes (at most %u)", field, bytes, limit));
}

absl::Status CheckTransports(const std::vector<std::string>& transports) {
  if (transports.size() > kMaxNodeTransports) {
    return absl::InvalidArgumentError(
        absl::StrFormat("node registration refused: %u transports (at most %u)", transports.size(),
                        kMaxNodeTransports));
  }
  for (const std::string& t : transports) {
    if (t.size() > kMaxNodeTransportBytes) {
      return FieldTooLong("transport name", t.size(), kMaxNodeTransportBytes);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRegistration(const NodeRegistration& reg) {
  if (reg.name.empty() || reg.data_address.empty()) {
    return absl::InvalidArgumentError("node registration refused: it needs a name and an address");
  }
  if (reg.slab_size < kAllocationAlignment || reg.slab_size > kMaxNodeSlabBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "node registration refused: slab of %u bytes (allowed %s to %s)", reg.slab_size,
        FormatSize(kAllocationAlignment), FormatSize(kMaxNodeSlabBytes)));
  }
  struct Field {
    std::string_view name;
    size_t bytes;
    size_t limit;
  };
  for (const Field& f : {Field{"name", reg.name.size(), kMaxNodeNameBytes},
                         Field{"host", reg.host.size(), kMaxNodeHostBytes},
                         Field{"address", reg.data_address.size(), kMaxNodeAddressBytes},
                         Field{"identity", reg.identity.size(), kMaxNodeIdentityBytes},
                         Field{"pool id", reg.pool_id.size(), kMaxNodeNameBytes}}) {
    if (f.bytes > f.limit) return FieldTooLong(f.name, f.bytes, f.limit);
  }
  return CheckTransports(reg.transports);
}

void HeartbeatTimes::Note(NodeId id, absl::Time when, bool only_if_known) {
  absl::MutexLock lock(&mu_);
  auto it = last_heard_.find(id);
  if (it == last_heard_.end()) {
    if (only_if_known) return;
    it = last_heard_.emplace(id, when).first;
  }
  it->second = std::max(it->second, when);
}

absl::Time HeartbeatTimes::LastHeard(NodeId id) const {
  absl::MutexLock lock(&mu_);
  auto it = last_heard_.find(id);
  return it == last_heard_.end() ? absl::InfinitePast() : it->second;
}

void HeartbeatTimes::Forget(NodeId id) {
  absl::MutexLock lock(&mu_);
  last_heard_.erase(id);
}

NodeEntry* NodeRegistry::Find(NodeId id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

NodeEntry* NodeRegistry::FindByNameOrAddress(std::string_view name) const {
  for (const auto& [id, node] : nodes_) {
    if (node->record.name == name || node->record.data_address == name) return node.get();
  }
  return nullptr;
}

bool NodeRegistry::IsUp(NodeId id) const {
  NodeEntry* node = Find(id);
  return node != nullptr && node->up();
}

NodeEntry& NodeRegistry::Restore(const NodeRecord& record, absl::Time now) {
  auto node = std::make_unique<NodeEntry>(record, now);
  next_node_id_ = std::max(next_node_id_, record.node_id + 1);
  NodeEntry& restored = *node;
  nodes_[record.node_id] = std::move(node);
  return restored;
}

absl::StatusOr<NodeEntry*> NodeRegistry::Claim(const NodeRegistration& reg,
                                               std::string_view pool_id) const {
  if (!reg.pool_id.empty() && reg.pool_id != pool_id) {
    LogWarning(
        "node %s refused: it belongs to pool %s, this catalog is pool %s (was --db lost or "
        "replaced?)",
        reg.name, reg.pool_id, pool_id);
    return absl::FailedPreconditionError(absl::StrFormat(
        "this node belongs to pool %s, but the directory's catalog is pool %s: its --db was "
        "lost, emptied or replaced; restore it, or remove pool_id from this node's --state-dir to "
        "join the new pool as an empty node",
        reg.pool_id, pool_id));
  }
  NodeEntry* known = nullptr;
  for (const auto& [id, candidate] : nodes_) {
    if (candidate->record.name == reg.name) known = candidate.get();
  }
  if (known == nullptr) {
    if (nodes_.size() >= kMaxNodes) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("node %s refused: the pool already has %u nodes, the most it takes",
                          reg.name, kMaxNodes));
    }
    return known;
  }
  const std::string& digest = known->record.identity_digest;
  if (digest.empty() || BytesMatch(digest, NodeIdentityDigest(reg.identity))) return known;
  LogWarning("registration as node %s from %s refused: another identity holds that name", reg.name,
             reg.data_address);
  return absl::FailedPreconditionError(absl::StrFormat(
      "node name '%s' belongs to a %s node at %s with another identity: give this node another "
      "--name, or its own --state-dir back (a forgotten name is free again after "
      "--forget-node-after)",
      reg.name, known->up() ? "live" : "known (down)", known->record.data_address));
}

NodeEntry& NodeRegistry::Add(uint64_t slab_size, absl::Time now) {
  NodeRecord record;
  record.node_id = next_node_id_++;
  record.slab_size = slab_size;
  return Restore(record, now);
}

void NodeRegistry::Erase(NodeId id) { nodes_.erase(id); }

uint64_t NodeRegistry::LiveCapacity() const {
  uint64_t capacity = 0;
  for (const auto& [id, node] : nodes_) {
    if (node->up()) capacity += node->allocator.capacity();
  }
  return capacity;
}

int NodeRegistry::TakingObjects() const {
  int taking = 0;
  for (const auto& [id, node] : nodes_) taking += node->taking_objects();
  return taking;
}

bool NodeRegistry::AwaitingRestarted(absl::Time now) const {
  if (now >= restart_wait_until_) return false;
  return std::any_of(nodes_.begin(), nodes_.end(),
                     [](const auto& entry) { return !entry.second->registered_since_start; });
}

void NodeRegistry::LogTransition(const NodeEntry& node, const std::optional<Transition>& t) {
  if (!t.has_value()) return;
  ++liveness_changes_;
  std::string line = absl::StrFormat("node %u %s: %s -> %s (%s); %u copies on it",
                                     node.record.node_id, node.record.name, LivenessName(t->from),
                                     LivenessName(t->to), t->reason, node.objects);
  if (t->to == Liveness::kUp) {
    LogInfo("%s", line);
  } else {
    LogWarning("%s", line);
  }
}

}  // namespace unipool
