#include "conversions.h"

#include <pybind11/stl.h>

#include <utility>

#include "absl/strings/str_format.h"

namespace unipool::python {
namespace py = pybind11;

py::dict ToDict(const ObjectInfo& info) {
  py::dict d;
  d["length"] = info.length;
  d["version"] = info.version;
  d["checksum"] = info.checksum;
  py::list copies;
  for (const CopyLocation& copy : info.copies) {
    py::dict c;
    c["node_id"] = copy.node_id;
    c["node_address"] = copy.node_address;
    c["node_host"] = copy.node_host;
    c["node_up"] = copy.node_up;
    copies.append(c);
  }
  d["copies"] = copies;
  return d;
}

namespace {

py::dict NodeDict(const NodeState& node) {
  py::dict d;
  d["node_id"] = node.node_id;
  d["name"] = node.name;
  d["host"] = node.host;
  d["data_address"] = node.data_address;
  d["up"] = node.up;
  d["draining"] = node.draining;
  d["capacity"] = node.capacity;
  d["used"] = node.used;
  d["largest_free"] = node.largest_free;
  d["objects"] = node.objects;
  d["pinned"] = node.pinned;
  d["leased"] = node.leased;
  d["evictions"] = node.evictions;
  d["transports"] = node.transports;
  return d;
}

}  // namespace

py::dict ToDict(const PoolState& state) {
  py::dict d;
  py::list nodes;
  for (const NodeState& node : state.nodes) nodes.append(NodeDict(node));
  d["nodes"] = nodes;
  d["objects"] = state.objects;
  d["pending_puts"] = state.pending_puts;
  d["capacity"] = state.capacity;
  d["used"] = state.used;
  d["pinned"] = state.pinned;
  d["leased"] = state.leased;
  d["evictions"] = state.evictions;
  d["held"] = state.held;
  return d;
}

py::dict ToDict(const ListEntry& entry) {
  py::dict d;
  d["key"] = entry.key;
  d["length"] = entry.length;
  d["version"] = entry.version;
  d["created_unix_ms"] = entry.created_unix_ms;
  d["nodes"] = entry.nodes;
  d["pinned"] = entry.pinned;
  return d;
}

py::dict ToDict(const ClientStats& stats) {
  py::dict d;
  d["transport"] = stats.transport;
  d["puts"] = stats.puts;
  d["gets"] = stats.gets;
  d["bytes_put"] = stats.bytes_put;
  d["bytes_got"] = stats.bytes_got;
  d["directory_requests"] = stats.directory_requests;
  d["node_requests"] = stats.node_requests;
  d["shm_requests"] = stats.shm_requests;
  d["rdma_requests"] = stats.rdma_requests;
  d["tcp_requests"] = stats.tcp_requests;
  d["checksum_failures"] = stats.checksum_failures;
  d["location_cache_hits"] = stats.location_cache_hits;
  d["stale_cached_reads"] = stats.stale_cached_reads;
  d["replica_fallbacks"] = stats.replica_fallbacks;
  return d;
}

ErrorMode ParseErrorMode(std::string_view errors) {
  if (errors == "raise") return ErrorMode::kRaise;
  if (errors == "return") return ErrorMode::kReturn;
  Raise(absl::InvalidArgumentError(
      absl::StrFormat("errors must be \"raise\" or \"return\", not \"%s\"", errors)));
}

py::list ResultList(const std::vector<absl::Status>& results, ErrorMode mode) {
  py::list out;
  for (const absl::Status& result : results) {
    if (result.ok()) {
      out.append(py::none());
    } else if (mode == ErrorMode::kRaise) {
      Raise(result);
    } else {
      out.append(ExceptionFor(result));
    }
  }
  return out;
}

KeyBatch::KeyBatch(std::vector<std::string> k) : keys(std::move(k)) {
  views.assign(keys.begin(), keys.end());
}

}  // namespace unipool::python
