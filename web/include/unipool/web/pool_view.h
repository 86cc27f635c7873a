// The pool as people see it: one JSON document that the dashboard page, its
// JSON API (/api/status) and `unipoolctl status --json` all share, and the
// Prometheus text exposition served at /metrics. Built from the pool types
// (unipool/pool_types.h), so the directory (from its own state) and unipoolctl (from the
// wire) produce the same bytes for the same pool.
//
// Thread safety: pure functions.
#ifndef UNIPOOL_WEB_POOL_VIEW_H_
#define UNIPOOL_WEB_POOL_VIEW_H_

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "unipool/pool_types.h"

namespace unipool {

// Rates are means over this many of the latest whole seconds.
inline constexpr int kRateWindowSeconds = 10;

// A node's link as the directory sees it, from its heartbeats: "ok", "late"
// (a beat is overdue; nodes beat every second) or "lost" (marked down).
std::string LinkState(const NodeState& node);
// "up", "draining" or "down".
std::string NodeStateName(const NodeState& node);

struct Rates {
  int window_seconds = 0;  // whole seconds covered (fewer just after a start)
  double puts_per_second = 0;
  double gets_per_second = 0;
  double evictions_per_second = 0;
  double hit_rate = -1;  // hits / gets over the window; negative: no gets
};
Rates RecentRates(const PoolMetrics& metrics, int window_seconds = kRateWindowSeconds);

// One node's JSON object (also the rows of `unipoolctl nodes --json`).
nlohmann::ordered_json NodeJson(const NodeState& node);

// One tenant's JSON object (also the rows of `unipoolctl tenants --json`).
nlohmann::ordered_json TenantJson(const TenantState& tenant);

// One directory's JSON object: {"address", "role", "term", "position",
// "lag", "replication_address"} (also `unipoolctl directory status --json`).
nlohmann::ordered_json DirectoryJson(const DirectoryState& directory);

// The whole document: {"time_unix_ms", "uptime_seconds", "pool", "totals",
// "rates", "nodes": [...], "tenants": [...], "directories": [...] (a
// replicated pool's; empty for a lone directory), "unreplicated", and
// "history": [...] with the last
// `history_seconds` seconds when that is positive}. Documented field by
// field in docs/dashboard.md.
nlohmann::ordered_json PoolJson(const PoolState& state, const PoolMetrics& metrics,
                                int64_t now_unix_ms, int history_seconds);

// Serialises for the wire or a terminal; keys that are not valid UTF-8 get
// U+FFFD for the bad bytes instead of failing.
std::string DumpJson(const nlohmann::ordered_json& json, bool pretty);

// The Prometheus text exposition format (version 0.0.4) of the same numbers.
std::string PrometheusText(const PoolState& state, const PoolMetrics& metrics);

}  // namespace unipool

#endif  // UNIPOOL_WEB_POOL_VIEW_H_
