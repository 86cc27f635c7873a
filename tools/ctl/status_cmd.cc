// unipoolctl status, nodes: the pool at a glance, and every node in detail.
// --json prints the document the dashboard's /api/status serves
// (unipool/web/pool_view.h), so scripts and the page read the same fields.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "output.h"
#include "unipool/common/protocol.h"
#include "unipool/common/units.h"
#include "unipool/web/fabric_view.h"
#include "unipool/web/pool_view.h"

namespace unipool::ctl {
namespace {

struct Snapshot {
  PoolState state;
  PoolMetrics metrics;
};

absl::StatusOr<Snapshot> Fetch(Context& ctx) {
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return admin.status();
  absl::StatusOr<PoolState> state = (*admin)->State();
  if (!state.ok()) return state.status();
  absl::StatusOr<PoolMetrics> metrics = (*admin)->Metrics(kRateWindowSeconds);
  if (!metrics.ok()) return metrics.status();
  return Snapshot{std::move(*state), std::move(*metrics)};
}

std::string Transports(const NodeState& n) {
  return n.transports.empty() ? "-" : absl::StrJoin(n.transports, ",");
}

std::string UsePercent(uint64_t used, uint64_t capacity) {
  return capacity == 0 ? "-" : FormatPercent(static_cast<double>(used) / capacity);
}

}  // namespace

int StatusCommand(Context& ctx) {
  if (!ctx.args().empty()) return UsageError("status [--json]");
  absl::StatusOr<Snapshot> snap = Fetch(ctx);
  if (!snap.ok()) return Fail(snap.status());
  const PoolState& s = snap->state;
  if (ctx.json()) {
    PrintJson(PoolJson(s, snap->metrics, absl::ToUnixMillis(absl::Now()), 0));
    return kExitOk;
  }
  int up = 0;
  for (const NodeState& n : s.nodes) up += n.up ? 1 : 0;
  Rates r = RecentRates(snap->metrics);
  uint64_t free = s.capacity - std::min(s.used, s.capacity);
  std::printf("pool      %d/%zu nodes up, %s used of %s (%s), %s free\n", up, s.nodes.size(),
              FormatSize(s.used).c_str(), FormatSize(s.capacity).c_str(),
              UsePercent(s.used, s.capacity).c_str(), FormatSize(free).c_str());
  std::printf("objects   %llu stored, %llu pinned, %llu leased, %llu puts in flight\n",
              static_cast<unsigned long long>(s.objects), static_cast<unsigned long long>(s.pinned),
              static_cast<unsigned long long>(s.leased),
              static_cast<unsigned long long>(s.pending_puts));
  std::printf(
      "requests  %s puts/s, %s gets/s, hit rate %s (last %d s); %llu evictions since start\n",
      FormatRate(r.puts_per_second).c_str(), FormatRate(r.gets_per_second).c_str(),
      FormatPercent(r.hit_rate).c_str(), r.window_seconds,
      static_cast<unsigned long long>(s.evictions));
  std::printf("\n");
  Table t;
  t.Column("NODE");
  t.Column("HOST");
  t.Column("ADDRESS");
  t.Column("STATE");
  t.Column("LINK");
  t.Column("TRANSPORT");
  t.Column("CAPACITY", true);
  t.Column("USED", true);
  t.Column("USE", true);
  t.Column("OBJECTS", true);
  for (const NodeState& n : s.nodes) {
    t.Row({n.name, n.host, n.data_address, NodeStateName(n), LinkState(n), Transports(n),
           FormatSize(n.capacity), FormatSize(n.used), UsePercent(n.used, n.capacity),
           absl::StrFormat("%d", n.objects)});
  }
  if (t.empty()) {
    std::printf("no nodes registered\n");
  } else {
    t.Print();
  }
  return kExitOk;
}

int NodesCommand(Context& ctx) {
  if (!ctx.args().empty()) return UsageError("nodes [--json]");
  absl::StatusOr<PoolState> state = ctx.pool_state();
  if (!state.ok()) return Fail(state.status());
  if (ctx.json()) {
    nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
    for (const NodeState& n : state->nodes) nodes.push_back(NodeJson(n));
    PrintJson({{"nodes", std::move(nodes)}});
    return kExitOk;
  }
  Table t;
  t.Column("ID", true);
  t.Column("NODE");
  t.Column("HOST");
  t.Column("ADDRESS");
  t.Column("STATE");
  t.Column("LINK");
  t.Column("HEARTBEAT", true);
  t.Column("TRANSPORT");
  t.Column("CAPACITY", true);
  t.Column("USED", true);
  t.Column("FREE", true);
  t.Column("LARGEST FREE", true);
  t.Column("OBJECTS", true);
  t.Column("PINNED", true);
  t.Column("LEASED", true);
  t.Column("EVICTED", true);
  t.Column("FLASH", true);
  t.Column("ON FLASH", true);
  t.Column("DEMOTED", true);
  t.Column("FLASH HITS", true);
  t.Column("FLASH DROPS", true);
  t.Column("RDMA PORTS");
  for (const NodeState& n : state->nodes) {
    std::vector<std::string> ports;
    for (const RdmaPortInfo& p : n.rdma_ports) ports.push_back(PortSummary(p));
    t.Row({absl::StrFormat("%d", n.node_id),
           n.name,
           n.host,
           n.data_address,
           NodeStateName(n),
           LinkState(n),
           n.up ? absl::StrFormat("%.1fs", absl::ToDoubleSeconds(n.since_heartbeat))
                : std::string("-"),
           Transports(n),
           FormatSize(n.capacity),
           FormatSize(n.used),
           FormatSize(n.capacity - std::min(n.used, n.capacity)),
           FormatSize(n.largest_free),
           absl::StrFormat("%d", n.objects),
           absl::StrFormat("%d", n.pinned),
           absl::StrFormat("%d", n.leased),
           absl::StrFormat("%d", n.evictions),
           n.counters.flash.capacity == 0 ? std::string("-")
                                          : absl::StrFormat("%s/%s", FormatSize(n.flash.bytes),
                                                            FormatSize(n.counters.flash.capacity)),
           absl::StrFormat("%d", n.flash.objects),
           absl::StrFormat("%d", n.flash.demotions),
           absl::StrFormat("%d", n.flash.promotions),
           absl::StrFormat("%d", n.flash.drops),
           ports.empty() ? std::string("-") : absl::StrJoin(ports, ", ")});
  }
  if (t.empty()) {
    std::printf("no nodes registered\n");
  } else {
    t.Print();
  }
  return kExitOk;
}

int TenantsCommand(Context& ctx) {
  if (!ctx.args().empty()) return UsageError("tenants [--json]");
  absl::StatusOr<PoolState> state = ctx.pool_state();
  if (!state.ok()) return Fail(state.status());
  if (ctx.json()) {
    nlohmann::ordered_json tenants = nlohmann::ordered_json::array();
    for (const TenantState& t : state->tenants) tenants.push_back(TenantJson(t));
    PrintJson({{"tenants", std::move(tenants)}});
    return kExitOk;
  }
  auto quota = [](uint64_t bytes) { return bytes == 0 ? std::string("-") : FormatSize(bytes); };
  Table t;
  t.Column("TENANT");
  t.Column("OBJECTS", true);
  t.Column("STORED", true);
  t.Column("QUOTA", true);
  t.Column("USE", true);
  t.Column("PINNED", true);
  t.Column("PIN QUOTA", true);
  for (const TenantState& n : state->tenants) {
    t.Row({PrintableKey(n.prefix), absl::StrFormat("%d", n.objects), FormatSize(n.stored),
           quota(n.storage_quota), UsePercent(n.stored, n.storage_quota), FormatSize(n.pinned),
           quota(n.pin_quota)});
  }
  if (t.empty()) {
    std::printf("no tenants yet (a tenant is a token's prefix, known from its first put or pin)\n");
  } else {
    t.Print();
  }
  return kExitOk;
}

}  // namespace unipool::ctl
