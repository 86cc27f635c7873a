// Directory: write capabilities end at commit or abort (revocation_queue.h).
// A put's capabilities are queued when it is committed or aborted; once
// every node has them revoked, the object's memory no longer waits for them
// when it is evicted, removed, replaced or moved.
#include "directory_internal.h"
#include "unipool/directory/directory.h"

namespace unipool {

void Directory::QueueRevocation(std::string_view key, uint64_t version,
                                std::span<const ObjectCopy> copies, uint64_t length,
                                int64_t deadline_unix_ms) {
  // Without a key no capability is checked; an expired one is refused anyway.
  if (!options_.capabilities.has_value() || deadline_unix_ms <= NowMs()) return;
  RevokePlan plan;
  plan.key = std::string(key);
  plan.version = version;
  for (const ObjectCopy& copy : copies) {
    const NodeEntry* node = nodes_.Find(copy.node_id);
    if (node == nullptr) continue;  // gone: its slab and capabilities with it
    // The very capability the reservation handed out (AddPending).
    Capability capability =
        Grant(*node, {.offset = copy.offset, .length = length, .access = wire::Access::Write},
              deadline_unix_ms);
    plan.on_nodes.push_back({node->record.data_address, capability});
  }
  if (!plan.on_nodes.empty()) revocations_.Push(std::move(plan));
}

void Directory::FinishRevocations(std::span<const RevokePlan> plans,
                                  const std::vector<bool>& ended) {
  ExclusiveLock lock(this);
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!ended[i] || plans[i].key.empty()) continue;
    auto it = objects_.find(plans[i].key);
    // Replaced since: the new object's own capabilities are queued on their own.
    if (it == objects_.end() || it->second.version != plans[i].version) continue;
    it->second.write_until_unix_ms = 0;
  }
}

}  // namespace unipool
