// Held extents and the rule for how long memory stays held (held_space.h).
#include "unipool/directory/held_space.h"

#include <algorithm>

#include "unipool/common/capability.h"
#include "unipool/directory/allocator.h"

namespace unipool {

HoldRule::HoldRule(const DirectoryOptions& options)
    : keyed_(options.capabilities.has_value()),
      after_lookup_(
          keyed_ ? std::max(options.lease, options.read_capability_lifetime + kCapabilityClockSkew)
                 : options.lease),
      after_reserve_(keyed_ ? options.put_timeout + kCapabilityClockSkew : absl::ZeroDuration()) {}

int64_t HoldRule::WriteCapabilityEnd(int64_t deadline_unix_ms) const {
  if (!keyed_) return 0;
  return deadline_unix_ms + absl::ToInt64Milliseconds(kCapabilityClockSkew);
}

const HeldExtent* HeldSpace::Find(uint64_t id) const {
  auto it = held_.find(id);
  return it == held_.end() ? nullptr : &it->second;
}

void HeldSpace::Add(const HeldExtent& held, NodeRegistry& nodes) {
  if (NodeEntry* node = nodes.Find(held.node_id)) {
    node->held_bytes += RoundUpToAllocation(held.length);
  }
  held_.emplace(held.id, held);
}

void HeldSpace::Release(uint64_t id, NodeRegistry& nodes) {
  std::optional<HeldExtent> held = Adopt(id, nodes);
  if (!held.has_value()) return;
  if (NodeEntry* node = nodes.Find(held->node_id)) node->allocator.Free(held->offset, held->length);
}

std::optional<HeldExtent> HeldSpace::Adopt(uint64_t id, NodeRegistry& nodes) {
  auto it = held_.find(id);
  if (it == held_.end()) return std::nullopt;
  HeldExtent held = it->second;
  held_.erase(it);
  if (NodeEntry* node = nodes.Find(held.node_id)) {
    node->held_bytes -= RoundUpToAllocation(held.length);
  }
  return held;
}

std::vector<uint64_t> HeldSpace::DropNode(NodeId id) {
  std::vector<uint64_t> dropped;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.node_id == id) {
      dropped.push_back(it->first);
      held_.erase(it++);
    } else {
      ++it;
    }
  }
  return dropped;
}

std::vector<uint64_t> HeldSpace::ExpiredBy(int64_t now_unix_ms) const {
  std::vector<uint64_t> expired;
  for (const auto& [id, held] : held_) {
    if (held.until_unix_ms < now_unix_ms) expired.push_back(id);
  }
  return expired;
}

std::optional<int64_t> HeldSpace::EarliestEnd(const std::function<bool(NodeId)>& on) const {
  std::optional<int64_t> earliest;
  for (const auto& [id, held] : held_) {
    if ((!earliest.has_value() || held.until_unix_ms < *earliest) && on(held.node_id)) {
      earliest = held.until_unix_ms;
    }
  }
  return earliest;
}

}  // namespace unipool
