#include "unipool/directory/placement.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/protocol.h"
#include "unipool/common/units.h"

namespace unipool {
namespace {

bool Excluded(std::span<const NodeId> exclude, NodeId id) {
  return std::find(exclude.begin(), exclude.end(), id) != exclude.end();
}

absl::Status TooFewTaking(const NodeRegistry& nodes, std::string_view key, int copies, int taking) {
  std::vector<std::string> states;
  for (const auto& [id, node] : nodes) {
    states.push_back(absl::StrFormat("%s %s%s", node->record.name,
                                     LivenessName(node->health.state()),
                                     node->record.draining ? " draining" : ""));
  }
  return absl::UnavailableError(absl::StrFormat(
      "'%s' needs %d cop%s on distinct nodes, but only %d live node%s take new objects (%s)",
      PrintableKey(key), copies, copies == 1 ? "y" : "ies", taking, taking == 1 ? "" : "s",
      absl::StrJoin(states, ", ")));
}

bool HasCopyOn(const ObjectEntry& entry, NodeId id) {
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    if (copy.node_id == id) return true;
  }
  return false;
}

// Whether evicting `entry` frees memory on an eligible node that lacks room
// for `rounded` bytes.
bool MakesRoom(const ObjectEntry& entry, const NodeRegistry& nodes,
               std::span<NodeEntry* const> eligible, uint64_t rounded) {
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    NodeEntry* node = nodes.Find(copy.node_id);
    if (node != nullptr && node->allocator.largest_free() < rounded &&
        std::find(eligible.begin(), eligible.end(), node) != eligible.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<NodeEntry*>> Placement::EligibleNodes(const NodeRegistry& nodes,
                                                                 std::string_view key,
                                                                 uint64_t rounded, int copies,
                                                                 std::span<const NodeId> exclude) {
  std::vector<NodeEntry*> eligible;
  int taking = 0;
  for (const auto& [id, node] : nodes) {
    if (!node->taking_objects() || Excluded(exclude, id)) continue;
    ++taking;
    if (node->allocator.capacity() >= rounded) eligible.push_back(node.get());
  }
  if (taking < copies) return TooFewTaking(nodes, key, copies, taking);
  if (static_cast<int>(eligible.size()) < copies) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("pool full: '%s' (%s) is larger than the slabs of the live nodes",
                        PrintableKey(key), FormatSize(rounded)));
  }
  return eligible;
}

std::vector<NodeEntry*> Placement::Fit(std::span<NodeEntry* const> eligible, uint64_t rounded,
                                       int copies) {
  std::vector<NodeEntry*> fit;
  for (NodeEntry* node : eligible) {
    if (node->allocator.largest_free() >= rounded) fit.push_back(node);
  }
  if (static_cast<int>(fit.size()) < copies) return {};
  std::sort(fit.begin(), fit.end(), [](NodeEntry* a, NodeEntry* b) {
    if (a->allocator.free_bytes() != b->allocator.free_bytes()) {
      return a->allocator.free_bytes() > b->allocator.free_bytes();
    }
    return a->record.node_id < b->record.node_id;
  });
  fit.resize(copies);
  return fit;
}

const ObjectEntry* Placement::ColdestVictim(const ObjectTable& objects, const NodeRegistry& nodes,
                                            std::span<NodeEntry* const> eligible, uint64_t rounded,
                                            int64_t now_ms, const MayEvict& may_evict) {
  for (const ObjectEntry* e = objects.ColdestEvictable(); e != nullptr;
       e = ObjectTable::Hotter(*e)) {
    if (e->lease_until_unix_ms() > now_ms || (may_evict && !may_evict(*e))) continue;
    if (MakesRoom(*e, nodes, eligible, rounded)) return e;
  }
  return nullptr;
}

std::optional<int64_t> Placement::EarliestLeaseEnd(const ObjectTable& objects,
                                                   const NodeRegistry& nodes,
                                                   std::span<NodeEntry* const> eligible,
                                                   uint64_t rounded, int64_t now_ms,
                                                   const MayEvict& may_evict) {
  std::optional<int64_t> earliest;
  for (const ObjectEntry* e = objects.ColdestEvictable(); e != nullptr;
       e = ObjectTable::Hotter(*e)) {
    int64_t until = e->lease_until_unix_ms();
    if (until <= now_ms || (earliest.has_value() && until >= *earliest)) continue;
    if ((may_evict && !may_evict(*e)) || !MakesRoom(*e, nodes, eligible, rounded)) continue;
    earliest = until;
  }
  return earliest;
}

bool Placement::Over(uint64_t used, uint64_t capacity) const {
  return static_cast<double>(used) > high_ * static_cast<double>(capacity);
}

Victims Placement::Sweep(const ObjectTable& objects, int64_t now_ms, size_t budget,
                         const Wanted& wanted, const std::function<bool(const Victims&)>& enough) {
  Victims victims;
  for (const ObjectEntry* e = objects.ColdestEvictable();
       e != nullptr && victims.keys.size() < budget && !enough(victims);
       e = ObjectTable::Hotter(*e)) {
    if (e->lease_until_unix_ms() > now_ms || !wanted(*e)) continue;
    victims.keys.push_back(e->key());
    victims.bytes += RoundUpToAllocation(e->length) * CopiesOf(*e).size();
  }
  victims.enough = enough(victims);
  return victims;
}

std::optional<Victims> Placement::NodeVictims(const ObjectTable& objects, const NodeEntry& node,
                                              int64_t now_ms, size_t budget,
                                              const MayEvict& may_evict) {
  const NodeId id = node.record.node_id;
  const uint64_t used = node.allocator.used();
  const uint64_t capacity = node.allocator.capacity();
  auto next = next_node_scan_ms_.find(id);
  if (!node.up() || budget == 0 || (next != next_node_scan_ms_.end() && now_ms < next->second) ||
      !Over(used, capacity)) {
    return std::nullopt;
  }
  const uint64_t target = static_cast<uint64_t>(low_ * static_cast<double>(capacity));
  uint64_t freed_here = 0;
  Victims victims = Sweep(
      objects, now_ms, budget,
      [&](const ObjectEntry& e) {
        if (!HasCopyOn(e, id) || (may_evict && !may_evict(e))) return false;
        freed_here += RoundUpToAllocation(e.length);
        return true;
      },
      [&](const Victims&) { return used - std::min(used, freed_here) <= target; });
  if (!victims.enough) next_node_scan_ms_[id] = now_ms + kRetryMs;
  return victims;
}

std::optional<Victims> Placement::PoolVictims(const ObjectTable& objects, const NodeRegistry& nodes,
                                              int64_t now_ms, size_t budget,
                                              const MayEvict& may_evict) {
  uint64_t used = 0, capacity = 0;
  for (const auto& [id, node] : nodes) {
    if (!node->up()) continue;
    used += node->allocator.used();
    capacity += node->allocator.capacity();
  }
  if (budget == 0 || capacity == 0 || now_ms < next_pool_scan_ms_ || !Over(used, capacity)) {
    return std::nullopt;
  }
  const uint64_t target = static_cast<uint64_t>(low_ * static_cast<double>(capacity));
  Victims victims = Sweep(
      objects, now_ms, budget, [&](const ObjectEntry& e) { return !may_evict || may_evict(e); },
      [&](const Victims& v) { return used - std::min(used, v.bytes) <= target; });
  if (!victims.enough) next_pool_scan_ms_ = now_ms + kRetryMs;
  return victims;
}

}  // namespace unipool
