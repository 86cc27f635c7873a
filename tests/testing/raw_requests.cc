#include "unipool/testing/raw_requests.h"

#include "unipool/common/capability.h"
#include "unipool/common/protocol.h"

namespace unipool::testing {

flatbuffers::Offset<flatbuffers::Vector<const wire::Capability*>> OneCapability(
    flatbuffers::FlatBufferBuilder& fbb, const Capability* capability) {
  if (capability == nullptr) return 0;
  wire::Capability encoded = EncodeCapability(*capability);
  return fbb.CreateVectorOfStructs(&encoded, 1);
}

absl::Status RawRead(Connection& conn, uint64_t offset, std::span<uint8_t> into,
                     const Capability* capability) {
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range range(offset, into.size());
  auto ranges = fbb.CreateVectorOfStructs(&range, 1);
  auto capabilities = OneCapability(fbb, capability);
  FinishMessage(fbb, wire::CreateRead(fbb, ranges, capabilities));
  std::span<uint8_t> sinks[] = {into};
  return conn.Call(fbb, {}, sinks).status();
}

absl::Status RawWrite(Connection& conn, uint64_t offset, std::span<const uint8_t> bytes,
                      const Capability* capability) {
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range range(offset, bytes.size());
  auto ranges = fbb.CreateVectorOfStructs(&range, 1);
  auto capabilities = OneCapability(fbb, capability);
  FinishMessage(fbb, wire::CreateWrite(fbb, ranges, capabilities));
  std::span<const uint8_t> payload[] = {bytes};
  return conn.Call(fbb, payload).status();
}

absl::StatusOr<std::vector<RawReservation>> RawPutStart(Connection& conn,
                                                        const std::vector<std::string>& keys,
                                                        uint64_t length, uint64_t client) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutStartItem>> items;
  for (const std::string& key : keys) {
    auto bytes = fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    items.push_back(wire::CreatePutStartItem(fbb, bytes, length));
  }
  FinishMessage(fbb, wire::CreatePutStart(fbb, fbb.CreateVector(items), client));
  absl::StatusOr<ReceivedFrame> reply = conn.Call(fbb);
  if (!reply.ok()) return reply.status();
  std::vector<RawReservation> out;
  for (const wire::PutStartReplyItem* item : *reply->message()->body_as_PutStartReply()->items()) {
    if (absl::Status s = StatusFromWire(item->status()); !s.ok()) return s;
    const wire::Placement* placement = item->placement();
    if (placement == nullptr) return absl::InternalError("PutStart answered no placement");
    out.push_back({item->put_id(), placement->version(),
                   std::string(AsStringView(placement->node_address())), placement->offset(),
                   DecodeCapability(placement->capability())});
  }
  return out;
}

std::vector<absl::Status> RawPutCommit(Connection& conn, const std::vector<uint64_t>& put_ids,
                                       uint64_t checksum, uint64_t client) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutCommitItem>> items;
  for (uint64_t id : put_ids) items.push_back(wire::CreatePutCommitItem(fbb, id, checksum));
  FinishMessage(fbb, wire::CreatePutCommit(fbb, fbb.CreateVector(items), client));
  absl::StatusOr<ReceivedFrame> reply = conn.Call(fbb);
  if (!reply.ok()) return {reply.status()};
  std::vector<absl::Status> out;
  for (const wire::Status* s : *reply->message()->body_as_PutCommitReply()->items()) {
    out.push_back(StatusFromWire(s));
  }
  return out;
}

absl::Status RawPutAbort(Connection& conn, const std::vector<uint64_t>& put_ids, uint64_t client) {
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreatePutAbort(fbb, fbb.CreateVector(put_ids), client));
  return conn.Call(fbb).status();
}

}  // namespace unipool::testing
