// unipoolctl fabric: the RDMA fabric as a matrix of client machines and
// nodes. Each pair shows its paths (local port -> node port, mode, state,
// bytes, errors, retries), or TCP and why when no path reached the node.
// Clients report every few seconds while they use RDMA; --json prints the
// same document as the dashboard's "fabric" (unipool/web/fabric_view.h),
// with the nodes' ports.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "ctl.h"
#include "output.h"
#include "unipool/common/units.h"
#include "unipool/web/fabric_view.h"

namespace unipool::ctl {
namespace {

std::string NodeLabel(const PoolState& state, const std::string& address) {
  for (const NodeState& n : state.nodes) {
    if (n.data_address == address) return n.name;
  }
  return address;
}

void PrintPorts(const PoolState& state) {
  Table t;
  t.Column("NODE");
  t.Column("PORT");
  t.Column("GID");
  t.Column("SUBNET");
  t.Column("MTU", true);
  t.Column("MODES");
  t.Column("RATE", true);
  t.Column("STATE");
  for (const NodeState& n : state.nodes) {
    for (const RdmaPortInfo& p : n.rdma_ports) {
      nlohmann::ordered_json j = RdmaPortJson(p);
      t.Row({n.name, absl::StrFormat("%s:%u", p.device, p.port), j["gid"], j["subnet"],
             absl::StrFormat("%d", j["mtu"].get<int>()), j["modes"],
             p.rate_mbps == 0 ? std::string("-") : absl::StrFormat("%u Gb/s", p.rate_mbps / 1000),
             j["state"]});
    }
  }
  if (t.empty()) {
    std::printf("no node has an RDMA port\n");
  } else {
    t.Print();
  }
}

void PrintPaths(const PoolState& state) {
  Table t;
  t.Column("FROM");
  t.Column("TO NODE");
  t.Column("PATH");
  t.Column("MODE");
  t.Column("STATE");
  t.Column("BYTES", true);
  t.Column("ERRORS", true);
  t.Column("RETRIES", true);
  t.Column("NOTE");
  for (const ClientFabric& c : state.fabric) {
    std::string from = c.client.empty() ? c.host : c.host + " (" + c.client + ")";
    for (const RdmaPathStats& p : c.paths) {
      t.Row({from, NodeLabel(state, p.node_address), p.local_port + " -> " + p.remote_port, p.mode,
             p.up ? "up" : "down", FormatSize(p.bytes), absl::StrFormat("%u", p.errors),
             absl::StrFormat("%u", p.retries), p.up ? "" : OneLine(p.last_error)});
    }
    for (const TcpFallbackStats& f : c.fallbacks) {
      t.Row({from, NodeLabel(state, f.node_address), "-", "tcp", "fallback", "-", "-", "-",
             OneLine(f.reason)});
    }
  }
  if (t.empty()) {
    std::printf("no client has reported RDMA paths in the last minute\n");
  } else {
    t.Print();
  }
}

}  // namespace

int FabricCommand(Context& ctx) {
  if (!ctx.args().empty()) return UsageError("fabric [--json]");
  absl::StatusOr<PoolState> state = ctx.pool_state();
  if (!state.ok()) return Fail(state.status());
  if (ctx.json()) {
    nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
    for (const NodeState& n : state->nodes) {
      nlohmann::ordered_json ports = nlohmann::ordered_json::array();
      for (const RdmaPortInfo& p : n.rdma_ports) ports.push_back(RdmaPortJson(p));
      nodes.push_back({{"name", n.name}, {"address", n.data_address}, {"rdma_ports", ports}});
    }
    nlohmann::ordered_json out = FabricJson(*state);
    out["nodes"] = std::move(nodes);
    PrintJson(out);
    return kExitOk;
  }
  PrintPorts(*state);
  std::printf("\n");
  PrintPaths(*state);
  return kExitOk;
}

}  // namespace unipool::ctl
