// A pool node's RDMA side: the slab registered once as one memory region,
// and a queue pair per client connection that asks for one.
//   RC: clients READ and WRITE the slab themselves; this code only connects
//       the QP and is otherwise idle.
//   UC (Apple's Thunderbolt fabric: no READ): a get is served here by
//       RDMA-writing the ranges into the client's memory, the last piece
//       WRITE_WITH_IMM so the client knows it is complete.
//
// Thread safety: thread-safe; each connection's QP is used only by that
// connection's server thread.
#ifndef UNIPOOL_VERBS_NODE_RDMA_H_
#define UNIPOOL_VERBS_NODE_RDMA_H_

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "unipool/common/server.h"
#include "unipool/common/slab.h"
#include "unipool/verbs/rdma.h"

namespace unipool {

struct NodeRdmaOptions {
  // Device name; empty = the first device with an active port.
  std::string device;
};

class NodeRdma {
 public:
  // Opens the device and registers the whole slab (one memory region:
  // registration cost is paid once, at start). FailedPrecondition when this
  // machine has no usable RDMA device or library.
  static absl::StatusOr<std::unique_ptr<NodeRdma>> Create(const NodeRdmaOptions& options,
                                                          const Slab& slab);

  // Transports this node offers beyond TCP: "rdma-rc" where RC works, and
  // always "rdma-uc".
  std::vector<std::string> transports() const;
  const RdmaDevice& device() const { return *device_; }
  // False when the device's port is no longer ACTIVE (link lost).
  bool LinkActive() const { return device_->PortActive(); }

  // Creates a QP for the connection and connects it to the client's end.
  absl::Status Connect(ServerConnection& conn, const wire::RdmaConnect& request);
  // UC get: writes `ranges` of the slab to the client's addresses. The
  // caller (the node's service) has checked the ranges' capabilities.
  absl::Status ReadTo(ServerConnection& conn, std::span<const std::span<uint8_t>> ranges,
                      const wire::RdmaReadTo& request);

 private:
  NodeRdma(NodeRdmaOptions options, std::unique_ptr<RdmaDevice> device,
           std::unique_ptr<MemoryRegion> slab_mr)
      : options_(std::move(options)), device_(std::move(device)), slab_mr_(std::move(slab_mr)) {}

  const NodeRdmaOptions options_;
  std::unique_ptr<RdmaDevice> device_;
  std::unique_ptr<MemoryRegion> slab_mr_;  // declared after device_: deregistered first
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_NODE_RDMA_H_
