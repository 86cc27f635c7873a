#include "unipool/verbs/node_rdma.h"

#include "absl/strings/str_format.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// A get of 128 x 2 MiB at Soft-RoCE speed in a TCG VM (~50 MB/s) takes ~5 s;
// real fabrics are 100x faster.
constexpr absl::Duration kTransferTimeout = absl::Seconds(30);

// The queue pair attached to one client connection.
class RdmaConnection : public ConnectionState {
 public:
  explicit RdmaConnection(std::unique_ptr<QueuePair> qp) : qp(std::move(qp)) {}
  std::unique_ptr<QueuePair> qp;
};

}  // namespace

absl::StatusOr<std::unique_ptr<NodeRdma>> NodeRdma::Create(const NodeRdmaOptions& options,
                                                           const Slab& slab) {
  ASSIGN_OR_RETURN(auto device, RdmaDevice::Open(options.device));
  absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(auto mr, device->Register(slab.data(), slab.size(), /*remote=*/true));
  LogInfo("RDMA on %s port %u (GID %s, MTU %d, %s): slab registered in %s", device->name(),
          device->port(), FormatGid(device->gid()), MtuBytes(device->active_mtu()),
          device->supports_rc() ? "RC and UC" : "UC only",
          absl::FormatDuration(absl::Now() - start));
  return std::unique_ptr<NodeRdma>(new NodeRdma(options, std::move(device), std::move(mr)));
}

std::vector<std::string> NodeRdma::transports() const {
  std::vector<std::string> t;
  if (device_->supports_rc()) t.push_back(RdmaModeName(RdmaMode::kRC));
  t.push_back(RdmaModeName(RdmaMode::kUC));
  return t;
}

absl::Status NodeRdma::Connect(ServerConnection& conn, const wire::RdmaConnect& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RdmaConnect has no payload");
  if (conn.state() != nullptr) {
    return absl::FailedPreconditionError("this connection already has a queue pair");
  }
  RdmaMode mode = request.mode() == wire::RdmaMode::RC ? RdmaMode::kRC : RdmaMode::kUC;
  if (mode == RdmaMode::kRC && !device_->supports_rc()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s offers no RC queue pairs; use UC", device_->name()));
  }
  ASSIGN_OR_RETURN(QpEndpoint client, EndpointFromWire(request.client()));
  ASSIGN_OR_RETURN(auto qp, QueuePair::Create(*device_, mode));
  RETURN_IF_ERROR(qp->Connect(client));
  LogInfo("%s QP %u connected to %s (QP %u, GID %s, MTU %d)", RdmaModeName(mode), qp->qp_num(),
          conn.peer(), client.qp_num, FormatGid(client.gid),
          MtuBytes(NegotiateMtu(qp->local().mtu, client.mtu)));
  flatbuffers::FlatBufferBuilder fbb;
  auto endpoint = EndpointToWire(fbb, qp->local());
  FinishMessage(
      fbb, wire::CreateRdmaConnectReply(fbb, endpoint, reinterpret_cast<uint64_t>(slab_mr_->addr()),
                                        slab_mr_->rkey(), device_->max_message()));
  conn.set_state(std::make_unique<RdmaConnection>(std::move(qp)));
  return conn.Reply(fbb);
}

absl::Status NodeRdma::ReadTo(ServerConnection& conn, std::span<const std::span<uint8_t>> ranges,
                              const wire::RdmaReadTo& request) {
  auto* rdma = dynamic_cast<RdmaConnection*>(conn.state());
  if (rdma == nullptr) return absl::FailedPreconditionError("RdmaReadTo before RdmaConnect");
  if (request.remote_addrs() == nullptr || request.remote_addrs()->size() != ranges.size()) {
    return absl::InvalidArgumentError("RdmaReadTo needs one remote address per range");
  }
  std::vector<RdmaTransfer> transfers;
  transfers.reserve(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    transfers.push_back({ranges[i].data(), slab_mr_->lkey(), request.remote_addrs()->Get(i),
                         request.rkey(), ranges[i].size()});
  }
  uint32_t imm = request.imm();
  // A failed or timed-out write leaves the QP unusable: the connection
  // closes and the client reconnects.
  RETURN_IF_ERROR(rdma->qp->Write(transfers, kTransferTimeout, &imm));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  return conn.Reply(fbb);
}

}  // namespace unipool
