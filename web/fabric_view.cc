#include "unipool/web/fabric_view.h"

#include "absl/strings/str_format.h"
#include "unipool/common/rdma_port.h"

namespace unipool {

using json = nlohmann::ordered_json;

std::string PortSummary(const RdmaPortInfo& port) {
  std::string subnet = SubnetText(port);
  return absl::StrFormat("%s%s %s", PortName(port), subnet.empty() ? "" : " " + subnet,
                         port.active ? "active" : "down");
}

json RdmaPortJson(const RdmaPortInfo& port) {
  return {{"device", port.device},         {"port", port.port},
          {"gid", FormatGid(port.gid)},    {"subnet", SubnetText(port)},
          {"mtu", MtuEnumBytes(port.mtu)}, {"modes", port.rc ? "rc,uc" : "uc"},
          {"rate_mbps", port.rate_mbps},   {"state", port.active ? "active" : "down"}};
}

namespace {

json PathJson(const RdmaPathStats& p) {
  return {{"node", p.node_address},        {"local", p.local_port},
          {"remote", p.remote_port},       {"mode", p.mode},
          {"state", p.up ? "up" : "down"}, {"bytes", p.bytes},
          {"requests", p.requests},        {"errors", p.errors},
          {"retries", p.retries},          {"last_error", p.last_error}};
}

}  // namespace

json FabricJson(const PoolState& state) {
  json clients = json::array();
  for (const ClientFabric& c : state.fabric) {
    json paths = json::array();
    for (const RdmaPathStats& p : c.paths) paths.push_back(PathJson(p));
    json tcp = json::array();
    for (const TcpFallbackStats& f : c.fallbacks) {
      tcp.push_back({{"node", f.node_address}, {"reason", f.reason}});
    }
    clients.push_back({{"host", c.host},
                       {"client", c.client},
                       {"age_ms", absl::ToInt64Milliseconds(c.age)},
                       {"paths", std::move(paths)},
                       {"tcp", std::move(tcp)}});
  }
  return {{"clients", std::move(clients)}};
}

}  // namespace unipool
