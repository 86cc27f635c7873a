// NodeService handlers for the directory's lifecycle requests: Checksum
// (verifying a readmitted slab, or what a move wrote) and Copy (a drain moves
// bytes from this node's slab straight into another node's) and RevokeWrites
// (a put's write capabilities end at its commit or abort).
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"
#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/node/node_service.h"
#include "unipool/pool_types.h"

namespace unipool {

absl::Status NodeService::HandleChecksum(ServerConnection& conn, const wire::Checksum& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("Checksum has no payload");
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto spans, ResolveRanges(request.ranges(), &total));
  std::vector<uint64_t> checksums;
  checksums.reserve(spans.size());
  for (const auto& span : spans) checksums.push_back(Checksum(span));
  flatbuffers::FlatBufferBuilder fbb;
  auto vec = fbb.CreateVector(checksums);
  FinishMessage(fbb, wire::CreateChecksumReply(fbb, vec));
  return conn.Reply(fbb);
}

absl::Status NodeService::HandleCopy(ServerConnection& conn, const wire::Copy& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("Copy has no payload");
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto spans, ResolveRanges(request.ranges(), &total));
  if (request.target_offsets() == nullptr || request.target_offsets()->size() != spans.size()) {
    return absl::InvalidArgumentError("Copy needs one target offset per range");
  }
  std::string target(AsStringView(request.target_address()));
  if (target.empty()) return absl::InvalidArgumentError("Copy without a target address");
  // Only where the directory said: otherwise any peer could have this node
  // send slab bytes to an address of its choosing.
  if (absl::Status allowed =
          CheckCapabilities(request.ranges(), request.capabilities(), wire::Access::Copy, &request);
      !allowed.ok()) {
    return Refuse(conn, wire::Body::Copy, allowed);
  }
  // The target is another pool node: this node acts as its client.
  absl::Status copied = [&]() -> absl::Status {
    ConnectionOptions options;
    options.peer_name = "node-copy";
    options.role = wire::Role::Node;
    options.io_timeout = absl::Seconds(30);
    ASSIGN_OR_RETURN(auto to, Connection::Open(target, options));
    flatbuffers::FlatBufferBuilder write;
    std::vector<wire::Range> ranges;
    ranges.reserve(spans.size());
    for (size_t i = 0; i < spans.size(); ++i) {
      ranges.emplace_back(request.target_offsets()->Get(i), spans[i].size());
    }
    auto vec = write.CreateVectorOfStructs(ranges);
    flatbuffers::Offset<flatbuffers::Vector<const wire::Capability*>> capabilities;
    if (const auto* given = request.target_capabilities(); given != nullptr) {
      wire::Capability* out = nullptr;
      capabilities = write.CreateUninitializedVectorOfStructs(given->size(), &out);
      for (const wire::Capability* capability : *given) *out++ = *capability;
    }
    FinishMessage(write, wire::CreateWrite(write, vec, capabilities));
    std::vector<std::span<const uint8_t>> payload(spans.begin(), spans.end());
    return to->Call(write, payload).status();  // straight from this slab
  }();
  if (!copied.ok()) {
    // A per-request failure, not a broken stream: answer it as a status.
    flatbuffers::FlatBufferBuilder fbb;
    auto status = StatusToWire(
        fbb,
        absl::Status(copied.code(), absl::StrFormat("copy to %s: %s", target, copied.message())));
    FinishMessage(fbb, wire::CreateError(fbb, status));
    return conn.Reply(fbb);
  }
  counters_.reads.fetch_add(spans.size(), std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(total, std::memory_order_relaxed);
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  return conn.Reply(fbb);
}

absl::Status NodeService::HandleRevokeWrites(ServerConnection& conn,
                                             const wire::RevokeWrites& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("RevokeWrites has no payload");
  const auto* given = request.capabilities();
  if (given == nullptr || given->size() == 0 || given->size() > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrFormat("RevokeWrites needs 1 to %u capabilities", kMaxBatchItems));
  }
  std::vector<Capability> capabilities;
  capabilities.reserve(given->size());
  for (const wire::Capability* c : *given) capabilities.push_back(DecodeCapability(c));
  absl::Status revoked = revocations_.Revoke(capabilities, absl::Now());
  flatbuffers::FlatBufferBuilder fbb;
  if (revoked.ok()) {
    FinishMessage(fbb, wire::CreateAck(fbb));
  } else {
    LogWarning("RevokeWrites from %s: %s", conn.peer(), revoked.message());
    FinishMessage(fbb, wire::CreateError(fbb, StatusToWire(fbb, revoked)));
  }
  return conn.Reply(fbb);
}

}  // namespace unipool
