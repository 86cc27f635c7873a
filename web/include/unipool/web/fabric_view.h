// The RDMA fabric as people see it: each node's ports, and each client's
// paths to the nodes with their counters and the nodes it reaches over TCP
// only (with why). Shared by /api/status (the dashboard's fabric matrix),
// `unipoolctl fabric [--json]` and `unipoolctl nodes`.
//
// Thread safety: pure functions.
#ifndef UNIPOOL_WEB_FABRIC_VIEW_H_
#define UNIPOOL_WEB_FABRIC_VIEW_H_

#include <string>

#include "nlohmann/json.hpp"
#include "unipool/pool_types.h"

namespace unipool {

// "rxe_ab:1 10.77.1.0/30 active" (the subnet left out when unknown).
std::string PortSummary(const RdmaPortInfo& port);
nlohmann::ordered_json RdmaPortJson(const RdmaPortInfo& port);
// {"clients": [{host, client, age_ms, paths: [...], tcp: [{node, reason}]}]}
nlohmann::ordered_json FabricJson(const PoolState& state);

}  // namespace unipool

#endif  // UNIPOOL_WEB_FABRIC_VIEW_H_
