#include "unipool/directory/pool_state.h"

#include <algorithm>
#include <cstdint>

#include "absl/time/clock.h"

namespace unipool {

PoolState ToPoolState(const PoolStatus& status) {
  PoolState state;
  state.objects = status.objects;
  state.pending_puts = status.pending_puts;
  state.capacity = status.capacity;
  state.used = status.used;
  state.pinned = status.pinned;
  state.leased = status.leased;
  state.evictions = status.evictions;
  for (const NodeStatus& n : status.nodes) {
    NodeState node;
    node.node_id = n.node_id;
    node.name = n.name;
    node.host = n.host;
    node.data_address = n.data_address;
    node.up = n.up;
    node.capacity = n.capacity;
    node.used = n.used;
    node.largest_free = n.largest_free;
    node.objects = n.objects;
    node.transports = n.transports;
    node.huge_pages = n.huge_pages;
    node.ms_since_heartbeat =
        static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(n.since_heartbeat)));
    node.draining = n.draining;
    node.pinned = n.pinned;
    node.leased = n.leased;
    node.evictions = n.evictions;
    state.nodes.push_back(std::move(node));
  }
  return state;
}

PoolMetrics ToPoolMetrics(const DirectoryMetrics& metrics, int history_seconds) {
  PoolMetrics out;
  RequestCounts totals = metrics.Totals();
  out.uptime_ms = static_cast<uint64_t>(
      std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Now() - metrics.start())));
  out.puts = totals.puts;
  out.hits = totals.hits;
  out.misses = totals.misses;
  out.removes = totals.removes;
  out.evictions = totals.evictions;
  auto u32 = [](uint64_t v) { return static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX)); };
  for (const SecondCounts& s : metrics.History(history_seconds)) {
    out.history.push_back({s.unix_seconds, u32(s.counts.puts), u32(s.counts.hits),
                           u32(s.counts.misses), u32(s.counts.removes), u32(s.counts.evictions)});
  }
  return out;
}

}  // namespace unipool
