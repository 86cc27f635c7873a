// A pool node's RDMA side: the slab registered once on each RDMA port (one
// memory region per port), and a queue pair per client connection that asks
// for one, on the port the client chose.
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
#include "absl/synchronization/mutex.h"
#include "unipool/common/server.h"
#include "unipool/common/slab.h"
#include "unipool/verbs/port_set.h"
#include "unipool/verbs/rdma.h"

namespace unipool {

struct NodeRdmaOptions {
  // Devices to serve on; empty = every port of every device. A device not
  // there yet, or a port down, is watched and adopted when it comes up.
  std::vector<std::string> devices;
};

class NodeRdma {
 public:
  // Lists the ports and registers the whole slab on each one that is usable
  // (one memory region per port: registration cost is paid once, at start or
  // when a port is adopted). FailedPrecondition when this machine has no
  // verbs library or no RDMA device; a machine whose ports are all down gets
  // a NodeRdma that serves once one comes up.
  static absl::StatusOr<std::unique_ptr<NodeRdma>> Create(const NodeRdmaOptions& options,
                                                          const Slab& slab);
  ~NodeRdma();

  // Transports this node offers beyond TCP: "rdma-rc" where a port does RC,
  // and always "rdma-uc".
  std::vector<std::string> transports() const;
  // Adopts ports that came up since the last call (at most once a second),
  // then lists every opened port with its state now.
  std::vector<RdmaPortInfo> Ports();

  // Answers RdmaPorts: the ports clients may connect on.
  absl::Status ServePorts(ServerConnection& conn);
  // Creates a QP on the port the client asked for (by GID; the first active
  // one when none is named) and connects it to the client's end.
  absl::Status Connect(ServerConnection& conn, const wire::RdmaConnect& request);
  // Path probe: an empty WRITE_WITH_IMM on the connection's QP, then Ack.
  absl::Status Probe(ServerConnection& conn, const wire::RdmaProbe& request);
  // UC get: writes `ranges` of the slab to the client's addresses. The
  // caller (the node's service) has checked the ranges' capabilities.
  absl::Status ReadTo(ServerConnection& conn, std::span<const std::span<uint8_t>> ranges,
                      const wire::RdmaReadTo& request);

 private:
  struct PortRegion;
  explicit NodeRdma(const Slab& slab) : slab_(slab) {}
  absl::Status RegisterSlab(RdmaDevice& device);
  // The slab's region on `device`; null when not registered there.
  const MemoryRegion* SlabRegion(const RdmaDevice* device) const;
  absl::StatusOr<RdmaDevice*> PortFor(const wire::RdmaConnect& request) const;

  const Slab& slab_;
  mutable absl::Mutex mu_;
  // Before ports_: every region is deregistered before its device closes.
  std::vector<std::pair<const RdmaDevice*, std::unique_ptr<MemoryRegion>>> regions_
      ABSL_GUARDED_BY(mu_);
  std::unique_ptr<RdmaPortSet> ports_;
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_NODE_RDMA_H_
