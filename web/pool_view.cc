#include "unipool/web/pool_view.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "unipool/common/rdma_port.h"
#include "unipool/web/fabric_view.h"

namespace unipool {
namespace {

using json = nlohmann::ordered_json;

// Nodes beat every second; two missed beats is worth showing.
constexpr absl::Duration kLateHeartbeat = absl::Seconds(2);

json RatesJson(const Rates& r) {
  json out = {{"window_seconds", r.window_seconds},
              {"puts_per_second", r.puts_per_second},
              {"gets_per_second", r.gets_per_second},
              {"evictions_per_second", r.evictions_per_second}};
  out["hit_rate"] = r.hit_rate < 0 ? json(nullptr) : json(r.hit_rate);
  return out;
}

// Prometheus label values escape backslash, double quote and newline.
std::string LabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Integers as integers; anything else with enough digits to be useful.
std::string FormatValue(double value) {
  if (value == static_cast<double>(static_cast<int64_t>(value)) && std::abs(value) < 9.0e15) {
    return absl::StrFormat("%d", static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.6f", value);
}

class Exposition {
 public:
  // Starts a metric family: its HELP and TYPE lines.
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    text_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  void Sample(std::string_view name, std::string_view labels, double value) {
    text_.append(name);
    if (!labels.empty()) text_.append("{").append(labels).append("}");
    text_.append(" ").append(FormatValue(value)).append("\n");
  }
  void Gauge(std::string_view name, std::string_view help, double value) {
    Family(name, "gauge", help);
    Sample(name, "", value);
  }
  void Counter(std::string_view name, std::string_view help, double value) {
    Family(name, "counter", help);
    Sample(name, "", value);
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

static json RdmaPortsJson(const std::vector<RdmaPortInfo>& ports) {
  json out = json::array();
  for (const RdmaPortInfo& p : ports) out.push_back(RdmaPortJson(p));
  return out;
}

std::string LinkState(const NodeState& node) {
  if (!node.up) return "lost";
  return node.since_heartbeat > kLateHeartbeat ? "late" : "ok";
}

std::string NodeStateName(const NodeState& node) {
  if (node.suspect) return "suspect";
  if (!node.up) return "down";
  return node.draining ? "draining" : "up";
}

Rates RecentRates(const PoolMetrics& metrics, int window_seconds) {
  Rates rates;
  size_t n = std::min(metrics.history.size(), static_cast<size_t>(std::max(0, window_seconds)));
  rates.window_seconds = static_cast<int>(n);
  if (n == 0) return rates;
  uint64_t puts = 0, hits = 0, misses = 0, evictions = 0;
  for (size_t i = metrics.history.size() - n; i < metrics.history.size(); ++i) {
    const PoolMetrics::Second& s = metrics.history[i];
    puts += s.puts;
    hits += s.hits;
    misses += s.misses;
    evictions += s.evictions;
  }
  double seconds = static_cast<double>(n);
  rates.puts_per_second = static_cast<double>(puts) / seconds;
  rates.gets_per_second = static_cast<double>(hits + misses) / seconds;
  rates.evictions_per_second = static_cast<double>(evictions) / seconds;
  if (hits + misses > 0)
    rates.hit_rate = static_cast<double>(hits) / static_cast<double>(hits + misses);
  return rates;
}

json NodeJson(const NodeState& n) {
  return {{"id", n.node_id},
          {"name", n.name},
          {"host", n.host},
          {"address", n.data_address},
          {"state", NodeStateName(n)},
          {"link", LinkState(n)},
          {"heartbeat_ms_ago", absl::ToInt64Milliseconds(n.since_heartbeat)},
          {"transports", n.transports},
          {"huge_pages", n.huge_pages},
          {"capacity", n.capacity},
          {"used", n.used},
          {"free", n.capacity - std::min(n.used, n.capacity)},
          {"largest_free", n.largest_free},
          {"objects", n.objects},
          {"pinned", n.pinned},
          {"leased", n.leased},
          {"evictions", n.evictions},
          {"rdma_ports", RdmaPortsJson(n.rdma_ports)},
          {"flash",
           {{"capacity", n.counters.flash.capacity},
            {"bytes", n.flash.bytes},
            {"objects", n.flash.objects},
            {"demotions", n.flash.demotions},
            {"promotions", n.flash.promotions},
            {"drops", n.flash.drops},
            {"store",
             {{"bytes", n.counters.flash.bytes},
              {"objects", n.counters.flash.objects},
              {"demotions", n.counters.flash.demotions},
              {"refused", n.counters.flash.refused},
              {"hits", n.counters.flash.hits},
              {"lru_drops", n.counters.flash.lru_drops},
              {"bad_pages", n.counters.flash.bad_pages},
              {"write_failures", n.counters.flash.write_failures},
              {"recovered", n.counters.flash.recovered}}}}}};
}

json TenantJson(const TenantState& t) {
  return {{"prefix", t.prefix},
          {"objects", t.objects},
          {"stored", t.stored},
          {"pinned", t.pinned},
          {"storage_quota", t.storage_quota},
          {"pin_quota", t.pin_quota}};
}

json DirectoryJson(const DirectoryState& d) {
  return {{"address", d.address}, {"role", std::string(DirectoryRoleName(d.role))},
          {"term", d.term},       {"position", d.position},
          {"lag", d.lag},         {"replication_address", d.replication_address}};
}

json PoolJson(const PoolState& state, const PoolMetrics& metrics, int64_t now_unix_ms,
              int history_seconds) {
  int up = 0;
  for (const NodeState& n : state.nodes) up += n.up ? 1 : 0;
  json out;
  out["time_unix_ms"] = now_unix_ms;
  out["uptime_seconds"] = metrics.uptime_ms / 1000;
  out["pool"] = {{"nodes", state.nodes.size()},
                 {"nodes_up", up},
                 {"capacity", state.capacity},
                 {"used", state.used},
                 {"free", state.capacity - std::min(state.used, state.capacity)},
                 {"objects", state.objects},
                 {"pending_puts", state.pending_puts},
                 {"pinned", state.pinned},
                 {"leased", state.leased},
                 {"evictions", state.evictions},
                 {"under_replicated", state.under_replicated},
                 {"copies_rereplicated", state.copies_rereplicated}};
  out["totals"] = {{"puts", metrics.puts},       {"gets", metrics.hits + metrics.misses},
                   {"hits", metrics.hits},       {"misses", metrics.misses},
                   {"removes", metrics.removes}, {"evictions", metrics.evictions}};
  out["rates"] = RatesJson(RecentRates(metrics));
  json nodes = json::array();
  for (const NodeState& n : state.nodes) nodes.push_back(NodeJson(n));
  out["nodes"] = std::move(nodes);
  out["fabric"] = FabricJson(state);
  json tenants = json::array();
  for (const TenantState& t : state.tenants) tenants.push_back(TenantJson(t));
  out["tenants"] = std::move(tenants);
  json directories = json::array();
  for (const DirectoryState& d : state.directories) directories.push_back(DirectoryJson(d));
  out["directories"] = std::move(directories);
  out["unreplicated"] = state.unreplicated;
  if (history_seconds > 0) {
    json history = json::array();
    size_t n = std::min(metrics.history.size(), static_cast<size_t>(history_seconds));
    for (size_t i = metrics.history.size() - n; i < metrics.history.size(); ++i) {
      const PoolMetrics::Second& s = metrics.history[i];
      history.push_back({{"t", s.unix_seconds},
                         {"puts", s.puts},
                         {"gets", s.hits + s.misses},
                         {"hits", s.hits},
                         {"misses", s.misses},
                         {"removes", s.removes},
                         {"evictions", s.evictions}});
    }
    out["history"] = std::move(history);
  }
  return out;
}

std::string DumpJson(const json& value, bool pretty) {
  return value.dump(pretty ? 2 : -1, ' ', false, json::error_handler_t::replace);
}

// Per RDMA path, as each client last reported it; per node RDMA port.
static void AddFabricMetrics(Exposition& e, const PoolState& state) {
  struct PerPath {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const RdmaPathStats&);
  };
  static const PerPath kPerPath[] = {
      {"unipool_rdma_path_up", "gauge", "1 while the client uses the RDMA path, 0 once it failed.",
       [](const RdmaPathStats& p) { return p.up ? 1.0 : 0.0; }},
      {"unipool_rdma_path_bytes_total", "counter", "Page bytes moved over the RDMA path.",
       [](const RdmaPathStats& p) { return static_cast<double>(p.bytes); }},
      {"unipool_rdma_path_errors_total", "counter", "Failures that took the path out of use.",
       [](const RdmaPathStats& p) { return static_cast<double>(p.errors); }},
      {"unipool_rdma_path_retries_total", "counter", "UC transfers sent again after a loss.",
       [](const RdmaPathStats& p) { return static_cast<double>(p.retries); }},
  };
  for (const PerPath& metric : kPerPath) {
    e.Family(metric.name, metric.type, metric.help);
    for (const ClientFabric& c : state.fabric) {
      for (const RdmaPathStats& p : c.paths) {
        e.Sample(
            metric.name,
            absl::StrFormat("host=\"%s\",client=\"%s\",node=\"%s\",local=\"%s\",remote=\"%s\"",
                            LabelValue(c.host), LabelValue(c.client), LabelValue(p.node_address),
                            LabelValue(p.local_port), LabelValue(p.remote_port)),
            metric.value(p));
      }
    }
  }
  e.Family("unipool_node_rdma_port_active", "gauge", "1 when the node's RDMA port is ACTIVE.");
  for (const NodeState& n : state.nodes) {
    for (const RdmaPortInfo& p : n.rdma_ports) {
      e.Sample(
          "unipool_node_rdma_port_active",
          absl::StrFormat("node=\"%s\",port=\"%s\"", LabelValue(n.name), LabelValue(PortName(p))),
          p.active ? 1.0 : 0.0);
    }
  }
}

// Per tenant: what it holds and its quotas (0: unlimited), allocated bytes.
static void AddTenantMetrics(Exposition& e, const PoolState& state) {
  struct PerTenant {
    const char* name;
    const char* help;
    uint64_t TenantState::*value;
  };
  static const PerTenant kPerTenant[] = {
      {"unipool_tenant_objects", "Committed objects of the tenant.", &TenantState::objects},
      {"unipool_tenant_stored_bytes", "Allocated bytes of the tenant's objects.",
       &TenantState::stored},
      {"unipool_tenant_pinned_bytes", "Allocated bytes of the tenant's pinned objects.",
       &TenantState::pinned},
      {"unipool_tenant_storage_quota_bytes", "The tenant's storage quota; 0: unlimited.",
       &TenantState::storage_quota},
      {"unipool_tenant_pin_quota_bytes", "The tenant's pin quota; 0: unlimited.",
       &TenantState::pin_quota},
  };
  for (const PerTenant& metric : kPerTenant) {
    e.Family(metric.name, "gauge", metric.help);
    for (const TenantState& t : state.tenants) {
      e.Sample(metric.name, absl::StrFormat("tenant=\"%s\"", LabelValue(t.prefix)),
               static_cast<double>(t.*metric.value));
    }
  }
}

// A replicated pool's directories as the leader sees them (none for a lone
// directory): one sample per directory and role, so a query can count roles.
static void AddDirectoryMetrics(Exposition& e, const PoolState& state) {
  if (state.directories.empty()) return;
  e.Family("unipool_directory_role", "gauge",
           "1 for the role the directory has (leader, standby, unreachable), 0 for the others.");
  for (const DirectoryState& d : state.directories) {
    for (DirectoryRole role :
         {DirectoryRole::kLeader, DirectoryRole::kStandby, DirectoryRole::kUnreachable}) {
      e.Sample(
          "unipool_directory_role",
          absl::StrFormat("address=\"%s\",replication=\"%s\",role=\"%s\"", LabelValue(d.address),
                          LabelValue(d.replication_address), DirectoryRoleName(role)),
          d.role == role ? 1.0 : 0.0);
    }
  }
  e.Gauge("unipool_directory_term", "The leader's term (its etcd leader key's revision).",
          static_cast<double>(state.directories.front().term));
  e.Family("unipool_directory_lag_writes", "gauge",
           "Catalog writes the directory is behind the leader (0 for the leader).");
  for (const DirectoryState& d : state.directories) {
    e.Sample("unipool_directory_lag_writes",
             absl::StrFormat("address=\"%s\",replication=\"%s\"", LabelValue(d.address),
                             LabelValue(d.replication_address)),
             static_cast<double>(d.lag));
  }
  e.Gauge("unipool_directory_unreplicated",
          "1 while the leader acknowledges writes no standby has (--allow-unreplicated).",
          state.unreplicated ? 1.0 : 0.0);
}

std::string PrometheusText(const PoolState& state, const PoolMetrics& metrics) {
  Exposition e;
  int up = 0;
  for (const NodeState& n : state.nodes) up += n.up ? 1 : 0;
  e.Gauge("unipool_directory_uptime_seconds", "Seconds since the directory started.",
          static_cast<double>(metrics.uptime_ms) / 1000.0);
  e.Family("unipool_nodes", "gauge", "Registered pool nodes by state.");
  int suspect = 0;
  for (const NodeState& n : state.nodes) suspect += n.suspect ? 1 : 0;
  e.Sample("unipool_nodes", "state=\"up\"", up);
  e.Sample("unipool_nodes", "state=\"suspect\"", suspect);
  e.Sample("unipool_nodes", "state=\"down\"",
           static_cast<double>(state.nodes.size() - up - suspect));
  e.Gauge("unipool_pool_capacity_bytes", "Bytes of slab memory in the pool.",
          static_cast<double>(state.capacity));
  e.Gauge("unipool_pool_used_bytes", "Bytes allocated to objects and reservations.",
          static_cast<double>(state.used));
  e.Gauge("unipool_objects", "Committed objects.", static_cast<double>(state.objects));
  e.Gauge("unipool_pending_puts", "Reserved puts not yet committed.",
          static_cast<double>(state.pending_puts));
  e.Gauge("unipool_pinned_objects", "Pinned objects.", static_cast<double>(state.pinned));
  e.Gauge("unipool_leased_objects", "Objects under a read lease.",
          static_cast<double>(state.leased));
  e.Gauge("unipool_under_replicated_objects",
          "Objects with a copy on a node that is not up (re-replicated after a delay).",
          static_cast<double>(state.under_replicated));
  e.Counter("unipool_rereplicated_copies_total",
            "Copies re-made on other nodes since the directory started.",
            static_cast<double>(state.copies_rereplicated));
  e.Counter("unipool_puts_total", "Objects committed since the directory started.",
            static_cast<double>(metrics.puts));
  e.Family("unipool_gets_total", "counter",
           "Keys looked up since the directory started, by whether they were found.");
  e.Sample("unipool_gets_total", "result=\"hit\"", static_cast<double>(metrics.hits));
  e.Sample("unipool_gets_total", "result=\"miss\"", static_cast<double>(metrics.misses));
  e.Counter("unipool_removes_total", "Keys removed since the directory started.",
            static_cast<double>(metrics.removes));
  e.Counter("unipool_evictions_total", "Objects evicted since the directory started.",
            static_cast<double>(metrics.evictions));

  struct PerNode {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const NodeState&);
  };
  static const PerNode kPerNode[] = {
      {"unipool_node_up", "gauge", "1 when the node is up, 0 when it is down.",
       [](const NodeState& n) { return n.up ? 1.0 : 0.0; }},
      {"unipool_node_draining", "gauge", "1 while the node is being drained.",
       [](const NodeState& n) { return n.draining ? 1.0 : 0.0; }},
      {"unipool_node_capacity_bytes", "gauge", "Bytes of the node's slab.",
       [](const NodeState& n) { return static_cast<double>(n.capacity); }},
      {"unipool_node_used_bytes", "gauge", "Bytes of the node's slab in use.",
       [](const NodeState& n) { return static_cast<double>(n.used); }},
      {"unipool_node_largest_free_bytes", "gauge", "Largest free extent of the node's slab.",
       [](const NodeState& n) { return static_cast<double>(n.largest_free); }},
      {"unipool_node_objects", "gauge", "Objects held by the node.",
       [](const NodeState& n) { return static_cast<double>(n.objects); }},
      {"unipool_node_heartbeat_age_seconds", "gauge", "Seconds since the node's last heartbeat.",
       [](const NodeState& n) { return absl::ToDoubleSeconds(n.since_heartbeat); }},
      {"unipool_node_evictions_total", "counter", "Objects evicted from the node.",
       [](const NodeState& n) { return static_cast<double>(n.evictions); }},
      // The flash tier (docs/flash.md); 0 for a node without one.
      {"unipool_node_flash_capacity_bytes", "gauge", "Bytes of the node's flash tier.",
       [](const NodeState& n) { return static_cast<double>(n.counters.flash.capacity); }},
      {"unipool_node_flash_bytes", "gauge", "Bytes of objects with a copy on the node's flash.",
       [](const NodeState& n) { return static_cast<double>(n.flash.bytes); }},
      {"unipool_node_flash_objects", "gauge", "Objects with a copy on the node's flash.",
       [](const NodeState& n) { return static_cast<double>(n.flash.objects); }},
      {"unipool_node_flash_demotions_total", "counter",
       "Memory copies evicted to the node's flash instead of dropped.",
       [](const NodeState& n) { return static_cast<double>(n.flash.demotions); }},
      {"unipool_node_flash_hits_total", "counter",
       "Lookups served by reading a page back from the node's flash (promotions).",
       [](const NodeState& n) { return static_cast<double>(n.flash.promotions); }},
      {"unipool_node_flash_drops_total", "counter",
       "Flash copies found gone when read (the node's LRU or bad media).",
       [](const NodeState& n) { return static_cast<double>(n.flash.drops); }},
      {"unipool_node_flash_lru_drops_total", "counter",
       "Pages the node's flash dropped because it was full (its own count).",
       [](const NodeState& n) { return static_cast<double>(n.counters.flash.lru_drops); }},
  };
  for (const PerNode& metric : kPerNode) {
    e.Family(metric.name, metric.type, metric.help);
    for (const NodeState& n : state.nodes) {
      e.Sample(metric.name,
               absl::StrFormat("node=\"%s\",address=\"%s\"", LabelValue(n.name),
                               LabelValue(n.data_address)),
               metric.value(n));
    }
  }
  AddFabricMetrics(e, state);
  AddTenantMetrics(e, state);
  AddDirectoryMetrics(e, state);
  return e.Take();
}

}  // namespace unipool
