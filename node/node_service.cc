#include "unipool/node/node_service.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/pool_types.h"

namespace unipool {

NodeService::NodeService(std::string name, Slab* slab, NodeRdma* rdma, ServerOptions server)
    : slab_(slab),
      rdma_(rdma),
      server_(
          [&] {
            server.name = std::move(name);
            return std::move(server);
          }(),
          this) {}

NodeService::~NodeService() { Stop(); }

absl::Status NodeService::Start(const std::string& listen_address) {
  return server_.Start(listen_address);
}

void NodeService::Stop() { server_.Stop(); }

absl::Status NodeService::Handle(ServerConnection& conn, const wire::Message& request) {
  RETURN_IF_ERROR(Authorize(conn.principal(), request));
  switch (request.body_type()) {
    case wire::Body::Read:
      return HandleRead(conn, *request.body_as_Read());
    case wire::Body::Write:
      return HandleWrite(conn, *request.body_as_Write());
    case wire::Body::RdmaConnect:
      if (rdma_ == nullptr) {
        return absl::FailedPreconditionError("this node serves no RDMA (TCP only)");
      }
      return rdma_->Connect(conn, *request.body_as_RdmaConnect());
    case wire::Body::RdmaPorts:
      if (rdma_ == nullptr) {
        return absl::FailedPreconditionError("this node serves no RDMA (TCP only)");
      }
      return rdma_->ServePorts(conn);
    case wire::Body::RdmaProbe:
      if (rdma_ == nullptr) return absl::FailedPreconditionError("this node serves no RDMA");
      return rdma_->Probe(conn, *request.body_as_RdmaProbe());
    case wire::Body::RdmaReadTo:
      return HandleRdmaReadTo(conn, *request.body_as_RdmaReadTo());
    case wire::Body::RdmaVerify:
      return HandleRdmaVerify(conn, *request.body_as_RdmaVerify());
    case wire::Body::Checksum:
      return HandleChecksum(conn, *request.body_as_Checksum());
    case wire::Body::Copy:
      return HandleCopy(conn, *request.body_as_Copy());
    case wire::Body::FlashDemote:
      return HandleFlashDemote(conn, *request.body_as_FlashDemote());
    case wire::Body::FlashPromote:
      return HandleFlashPromote(conn, *request.body_as_FlashPromote());
    case wire::Body::RevokeWrites:
      return HandleRevokeWrites(conn, *request.body_as_RevokeWrites());
    case wire::Body::FlashRead:
      return HandleFlashRead(conn, *request.body_as_FlashRead());
    default:
      return absl::InvalidArgumentError(absl::StrFormat("a pool node does not serve %s requests",
                                                        wire::EnumNameBody(request.body_type())));
  }
}

bool NodeService::IsQuick(const wire::Message& request) const {
  switch (request.body_type()) {
    case wire::Body::Write:
      return true;  // its payload is what it writes, and the server bounds it
    case wire::Body::Read: {
      const auto* ranges = request.body_as_Read()->ranges();
      if (ranges == nullptr) return true;  // refused at once
      uint64_t total = 0;
      for (const wire::Range* range : *ranges) {
        total += std::min<uint64_t>(range->length(), kQuickPayloadBytes + 1);
        if (total > kQuickPayloadBytes) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

absl::Status NodeService::Authorize(const Principal& who, const wire::Message& request) {
  if (!who.authenticated || who.cluster_key) return absl::OkStatus();
  wire::Body body = request.body_type();
  // A checksum names any range, freed memory included, and carries no
  // capability: byte by byte it would read the slab. Only the directory
  // (the cluster key) asks for one.
  if (body == wire::Body::Checksum) {
    return absl::PermissionDeniedError(
        "Checksum refused: only the directory (the cluster key) orders checksums of slab ranges");
  }
  // Both name any range of the slab without a capability.
  if (body == wire::Body::FlashDemote || body == wire::Body::FlashPromote) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s refused: only the directory (the cluster key) moves pages to and from flash",
        wire::EnumNameBody(body)));
  }
  // Revoking another's capability would break its put.
  if (body == wire::Body::RevokeWrites) {
    return absl::PermissionDeniedError(
        "RevokeWrites refused: only the directory (the cluster key) ends write capabilities");
  }
  if (body == wire::Body::Copy && who.role != wire::Role::Admin) {
    return absl::PermissionDeniedError(
        "Copy refused: only the directory (the cluster key) or an admin orders copies");
  }
  // A node token writes only as the source of a copy the directory ordered
  // (the Write carries the directory's capabilities, checked like a
  // client's).
  if (who.role == wire::Role::Node && body != wire::Body::Write) {
    return absl::PermissionDeniedError(
        absl::StrFormat("%s refused: a node token serves only registration with the directory",
                        wire::EnumNameBody(body)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::span<uint8_t>>> NodeService::ResolveRanges(
    const flatbuffers::Vector<const wire::Range*>* ranges, uint64_t* total) const {
  if (ranges == nullptr || ranges->size() == 0) {
    return absl::InvalidArgumentError("request without ranges");
  }
  if (ranges->size() > kMaxBatchItems) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%u ranges in one request, over the limit of %u", ranges->size(), kMaxBatchItems));
  }
  std::vector<std::span<uint8_t>> spans;
  spans.reserve(ranges->size());
  *total = 0;
  for (const wire::Range* range : *ranges) {
    ASSIGN_OR_RETURN(auto span, slab_->Range(range->offset(), range->length()));
    *total += span.size();
    spans.push_back(span);
  }
  FrameLimits limits;
  if (*total > limits.max_payload_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ranges total %u bytes, over the frame limit of %u", *total, limits.max_payload_bytes));
  }
  return spans;
}

absl::Status NodeService::CheckCapabilities(
    const flatbuffers::Vector<const wire::Range*>* ranges,
    const flatbuffers::Vector<const wire::Capability*>* capabilities, wire::Access access,
    const wire::Copy* copy) const {
  if (!capability_key_.has_value()) return absl::OkStatus();
  size_t given = capabilities == nullptr ? 0 : capabilities->size();
  if (given != ranges->size()) {
    // Named: the first range without one (with too many, the first).
    const wire::Range* range = ranges->Get(given < ranges->size() ? given : 0);
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s of [%u, +%u) refused: every range needs a capability from the directory (%u ranges, "
        "%u capabilities)",
        absl::AsciiStrToLower(wire::EnumNameAccess(access)), range->offset(), range->length(),
        ranges->size(), given));
  }
  absl::Time now = absl::Now();
  CapabilityUse use{.slab_id = slab_->id(), .access = access};
  if (copy != nullptr) use.copy_target = AsStringView(copy->target_address());
  for (size_t i = 0; i < ranges->size(); ++i) {
    use.offset = ranges->Get(i)->offset();
    use.length = ranges->Get(i)->length();
    if (copy != nullptr) use.copy_target_offset = copy->target_offsets()->Get(i);
    Capability capability = DecodeCapability(capabilities->Get(i));
    RETURN_IF_ERROR(capability_key_->Check(capability, use, now));
    if (access == wire::Access::Write && revocations_.Revoked(capability)) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "write of [%u, +%u) refused: its capability ended when its put was committed or "
          "aborted",
          use.offset, use.length));
    }
  }
  return absl::OkStatus();
}

absl::Status NodeService::Refuse(ServerConnection& conn, wire::Body request,
                                 const absl::Status& refusal) {
  LogWarning("refused %s from %s: %s", wire::EnumNameBody(request), conn.peer(), refusal.message());
  RETURN_IF_ERROR(conn.DiscardPayload());
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateError(fbb, StatusToWire(fbb, refusal)));
  return conn.Reply(fbb);
}

absl::Status NodeService::HandleRead(ServerConnection& conn, const wire::Read& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("Read carries no payload");
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto spans, ResolveRanges(request.ranges(), &total));
  if (absl::Status allowed =
          CheckCapabilities(request.ranges(), request.capabilities(), wire::Access::Read);
      !allowed.ok()) {
    return Refuse(conn, wire::Body::Read, allowed);
  }
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  std::vector<std::span<const uint8_t>> payload(spans.begin(), spans.end());
  RETURN_IF_ERROR(conn.Reply(fbb, payload));  // straight from the slab, no copy
  counters_.reads.fetch_add(spans.size(), std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(total, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status NodeService::HandleWrite(ServerConnection& conn, const wire::Write& request) {
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto spans, ResolveRanges(request.ranges(), &total));
  if (absl::Status allowed =
          CheckCapabilities(request.ranges(), request.capabilities(), wire::Access::Write);
      !allowed.ok()) {
    return Refuse(conn, wire::Body::Write, allowed);
  }
  if (total != conn.payload_bytes()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Write ranges total %u bytes but the payload has %u", total, conn.payload_bytes()));
  }
  // Announced, so that a revocation arriving now waits for these bytes.
  std::vector<Capability> used;
  if (capability_key_.has_value()) {
    for (const wire::Capability* c : *request.capabilities()) used.push_back(DecodeCapability(c));
    if (!revocations_.BeginWrite(used)) {
      return Refuse(
          conn, wire::Body::Write,
          absl::PermissionDeniedError(
              "write refused: its capability ended when its put was committed or aborted"));
    }
  }
  absl::Cleanup ended = [&] {
    if (!used.empty()) revocations_.EndWrite(used);
  };
  RETURN_IF_ERROR(conn.ReadPayload(spans));  // straight into the slab
  counters_.writes.fetch_add(spans.size(), std::memory_order_relaxed);
  counters_.bytes_written.fetch_add(total, std::memory_order_relaxed);
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  return conn.Reply(fbb);
}

}  // namespace unipool

namespace unipool {

absl::Status NodeService::HandleRdmaReadTo(ServerConnection& conn,
                                           const wire::RdmaReadTo& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RdmaReadTo has no payload");
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto spans, ResolveRanges(request.ranges(), &total));
  // The node writes these ranges to the client: the same leave as a Read.
  if (absl::Status allowed =
          CheckCapabilities(request.ranges(), request.capabilities(), wire::Access::Read);
      !allowed.ok()) {
    return Refuse(conn, wire::Body::RdmaReadTo, allowed);
  }
  if (rdma_ == nullptr) return absl::FailedPreconditionError("this node serves no RDMA");
  RETURN_IF_ERROR(rdma_->ReadTo(conn, spans, request));
  counters_.reads.fetch_add(spans.size(), std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(total, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status NodeService::HandleRdmaVerify(ServerConnection& conn,
                                           const wire::RdmaVerify& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RdmaVerify has no payload");
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto spans, ResolveRanges(request.ranges(), &total));
  if (request.checksums() == nullptr || request.checksums()->size() != spans.size()) {
    return absl::InvalidArgumentError("RdmaVerify needs one checksum per range");
  }
  // Only the put's writer learns whether its range holds given bytes: a
  // checksum answer on any range would be an oracle on others' pages.
  if (absl::Status allowed =
          CheckCapabilities(request.ranges(), request.capabilities(), wire::Access::Write);
      !allowed.ok()) {
    return Refuse(conn, wire::Body::RdmaVerify, allowed);
  }
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Status>> statuses;
  for (size_t i = 0; i < spans.size(); ++i) {
    absl::Status s;
    if (Checksum(spans[i]) != request.checksums()->Get(i)) {
      s = absl::DataLossError(
          absl::StrFormat("range at %u did not arrive whole", request.ranges()->Get(i)->offset()));
    }
    statuses.push_back(StatusToWire(fbb, s));
  }
  auto vec = fbb.CreateVector(statuses);
  FinishMessage(fbb, wire::CreateStatusList(fbb, vec));
  counters_.writes.fetch_add(spans.size(), std::memory_order_relaxed);
  counters_.bytes_written.fetch_add(total, std::memory_order_relaxed);
  return conn.Reply(fbb);
}

}  // namespace unipool
