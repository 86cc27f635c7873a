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
// A probe's immediate completes at once on a working link; a link that
// loses it is not a path.
constexpr absl::Duration kProbeTimeout = absl::Seconds(2);

// The queue pair attached to one client connection, and the slab's region
// on its port.
class RdmaConnection : public ConnectionState {
 public:
  RdmaConnection(std::unique_ptr<QueuePair> qp, const MemoryRegion* slab_mr)
      : qp(std::move(qp)), slab_mr(slab_mr) {}
  std::unique_ptr<QueuePair> qp;
  const MemoryRegion* slab_mr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<NodeRdma>> NodeRdma::Create(const NodeRdmaOptions& options,
                                                           const Slab& slab) {
  std::unique_ptr<NodeRdma> rdma(new NodeRdma(slab));
  NodeRdma* self = rdma.get();
  ASSIGN_OR_RETURN(rdma->ports_, RdmaPortSet::Create(options.devices, [self](RdmaDevice& device) {
                     return self->RegisterSlab(device);
                   }));
  return rdma;
}

NodeRdma::~NodeRdma() {
  absl::MutexLock lock(&mu_);
  regions_.clear();  // before the ports' devices close
}

absl::Status NodeRdma::RegisterSlab(RdmaDevice& device) {
  absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(auto mr, device.Register(slab_.data(), slab_.size(), /*remote=*/true));
  LogInfo("slab registered on %s port %u in %s", device.name(), device.port(),
          absl::FormatDuration(absl::Now() - start));
  absl::MutexLock lock(&mu_);
  regions_.emplace_back(&device, std::move(mr));
  return absl::OkStatus();
}

const MemoryRegion* NodeRdma::SlabRegion(const RdmaDevice* device) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [owner, mr] : regions_) {
    if (owner == device) return mr.get();
  }
  return nullptr;
}

std::vector<std::string> NodeRdma::transports() const {
  std::vector<std::string> t;
  std::vector<RdmaDevice*> opened = ports_->Opened();
  if (std::any_of(opened.begin(), opened.end(), [](RdmaDevice* d) { return d->supports_rc(); })) {
    t.push_back(RdmaModeName(RdmaMode::kRC));
  }
  t.push_back(RdmaModeName(RdmaMode::kUC));
  return t;
}

std::vector<RdmaPortInfo> NodeRdma::Ports() {
  ports_->Refresh();
  return ports_->Infos();
}

absl::Status NodeRdma::ServePorts(ServerConnection& conn) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RdmaPorts has no payload");
  flatbuffers::FlatBufferBuilder fbb;
  auto ports = RdmaPortsToWire(fbb, Ports());
  FinishMessage(fbb, wire::CreateRdmaPortsReply(fbb, ports));
  return conn.Reply(fbb);
}

absl::StatusOr<RdmaDevice*> NodeRdma::PortFor(const wire::RdmaConnect& request) const {
  if (request.node_gid() != nullptr && request.node_gid()->size() != 0) {
    Gid gid{};
    if (request.node_gid()->size() != gid.size()) {
      return absl::InvalidArgumentError("RdmaConnect node_gid must be 16 bytes");
    }
    std::copy(request.node_gid()->begin(), request.node_gid()->end(), gid.begin());
    RdmaDevice* device = ports_->FindByGid(gid);
    if (device == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrFormat("no RDMA port with GID %s here", FormatGid(gid)));
    }
    return device;
  }
  for (RdmaDevice* device : ports_->Opened()) {
    if (device->PortActive()) return device;
  }
  return absl::FailedPreconditionError("no RDMA port is active here");
}

absl::Status NodeRdma::Connect(ServerConnection& conn, const wire::RdmaConnect& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RdmaConnect has no payload");
  if (conn.state() != nullptr) {
    return absl::FailedPreconditionError("this connection already has a queue pair");
  }
  ASSIGN_OR_RETURN(RdmaDevice * device, PortFor(request));
  const MemoryRegion* slab_mr = SlabRegion(device);
  if (slab_mr == nullptr) return absl::InternalError("slab not registered on the chosen port");
  RdmaMode mode = request.mode() == wire::RdmaMode::RC ? RdmaMode::kRC : RdmaMode::kUC;
  if (mode == RdmaMode::kRC && !device->supports_rc()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s offers no RC queue pairs; use UC", device->name()));
  }
  ASSIGN_OR_RETURN(QpEndpoint client, EndpointFromWire(request.client()));
  ASSIGN_OR_RETURN(auto qp, QueuePair::Create(*device, mode));
  RETURN_IF_ERROR(qp->Connect(client));
  LogInfo("%s QP %u on %s:%u connected to %s (QP %u, GID %s, MTU %d)", RdmaModeName(mode),
          qp->qp_num(), device->name(), device->port(), conn.peer(), client.qp_num,
          FormatGid(client.gid), MtuBytes(NegotiateMtu(qp->local().mtu, client.mtu)));
  flatbuffers::FlatBufferBuilder fbb;
  auto endpoint = EndpointToWire(fbb, qp->local());
  FinishMessage(
      fbb, wire::CreateRdmaConnectReply(fbb, endpoint, reinterpret_cast<uint64_t>(slab_mr->addr()),
                                        slab_mr->rkey(), device->max_message()));
  conn.set_state(std::make_unique<RdmaConnection>(std::move(qp), slab_mr));
  return conn.Reply(fbb);
}

absl::Status NodeRdma::Probe(ServerConnection& conn, const wire::RdmaProbe& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RdmaProbe has no payload");
  auto* rdma = dynamic_cast<RdmaConnection*>(conn.state());
  if (rdma == nullptr) return absl::FailedPreconditionError("RdmaProbe before RdmaConnect");
  RETURN_IF_ERROR(rdma->qp->SendImmediate(request.imm(), kProbeTimeout));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
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
    transfers.push_back({ranges[i].data(), rdma->slab_mr->lkey(), request.remote_addrs()->Get(i),
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
