// DirectoryService handlers for the lifecycle requests: Pin, Evict, Drain.
#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/directory/directory_service.h"

namespace unipool {

absl::Status DirectoryService::HandlePin(ServerConnection& conn, const wire::Pin& request) {
  std::string_view key = AsStringView(request.key());
  // The pin quota of a tenant pinning is its token's (tenants.h).
  if (const Principal& who = conn.principal(); who.authenticated && !who.cluster_key) {
    directory_->LearnTenant(who.prefix, who.quota.storage_bytes, who.quota.pin_bytes);
  }
  absl::Status result = request.unpin() ? directory_->Unpin(key, request.prefix())
                                        : directory_->Pin(key, request.prefix());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Status>> items = {StatusToWire(fbb, result)};
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreateStatusList(fbb, vec));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleEvict(ServerConnection& conn, const wire::Evict& request) {
  std::string_view prefix = AsStringView(request.prefix());
  if (prefix.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError("Evict prefix longer than a key can be");
  }
  if (request.tier() > wire::EvictTier::MAX) {
    return absl::InvalidArgumentError("Evict names an unknown tier");
  }
  ASSIGN_OR_RETURN(uint64_t evicted,
                   directory_->Evict(prefix, static_cast<EvictTier>(request.tier())));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateEvictReply(fbb, evicted));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleDrain(ServerConnection& conn, const wire::Drain& request) {
  absl::StatusOr<DrainProgress> progress =
      directory_->Drain(AsStringView(request.node()), request.undrain());
  flatbuffers::FlatBufferBuilder fbb;
  if (!progress.ok()) {
    auto status = StatusToWire(fbb, progress.status());
    FinishMessage(fbb, wire::CreateDrainReply(fbb, status));
    return conn.Reply(fbb);
  }
  auto status = StatusToWire(fbb, progress->blocked);
  auto name = fbb.CreateString(progress->name);
  FinishMessage(fbb, wire::CreateDrainReply(fbb, status, progress->node_id, name,
                                            progress->draining, progress->objects, progress->used,
                                            progress->moves_in_flight, progress->done));
  return conn.Reply(fbb);
}

}  // namespace unipool
