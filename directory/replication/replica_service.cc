#include "unipool/replication/replica_service.h"

#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

ServerOptions WithName(ServerOptions options) {
  options.name = "unipool-directory (standby)";
  options.limits.max_payload_bytes = kMaxReplicatedBatchBytes;
  return options;
}

absl::StatusOr<ReplicaOp> OpOf(wire::ReplicateKind kind) {
  switch (kind) {
    case wire::ReplicateKind::Probe:
      return ReplicaOp::kProbe;
    case wire::ReplicateKind::Batch:
      return ReplicaOp::kBatch;
    case wire::ReplicateKind::Reset:
      return ReplicaOp::kReset;
    case wire::ReplicateKind::Chunk:
      return ReplicaOp::kChunk;
    case wire::ReplicateKind::Mark:
      return ReplicaOp::kMark;
  }
  return absl::InvalidArgumentError("unknown replication request kind");
}

}  // namespace

ReplicaService::ReplicaService(ReplicaStore* store, std::function<std::string()> leader,
                               std::string address, ServerOptions options)
    : store_(store),
      leader_(std::move(leader)),
      address_(std::move(address)),
      server_(WithName(std::move(options)), this) {}

absl::Status ReplicaService::Handle(ServerConnection& conn, const wire::Message& request) {
  if (request.body_type() != wire::Body::Replicate) return RefuseNotLeader(conn);
  const Principal& who = conn.principal();
  if (who.authenticated && !who.cluster_key) {
    return absl::PermissionDeniedError("only a directory holding the cluster key replicates");
  }
  return HandleReplicate(conn, *request.body_as_Replicate());
}

// A client or node that came here by mistake is told where the leader is,
// as an Unavailable reply (so it moves on, as from a restarting directory).
// The reply is sent here: a handler's own Unavailable status would close the
// connection without a word, as a broken socket does.
absl::Status ReplicaService::RefuseNotLeader(ServerConnection& conn) {
  std::string leader = leader_();
  absl::Status refusal = absl::UnavailableError(
      leader.empty() ? "not the leader: this directory is a standby and no leader is known yet"
                     : absl::StrFormat("not the leader: this directory is a standby; the "
                                       "leader is %s",
                                       leader));
  // A request with a payload cannot be skipped safely: end the connection.
  if (conn.payload_bytes() != 0) return refusal;
  flatbuffers::FlatBufferBuilder fbb;
  BuildError(fbb, refusal);
  return conn.Reply(fbb);
}

absl::Status ReplicaService::HandleReplicate(ServerConnection& conn,
                                             const wire::Replicate& request) {
  ASSIGN_OR_RETURN(ReplicaOp op, OpOf(request.kind()));
  std::string data(conn.payload_bytes(), '\0');
  std::span<uint8_t> sink(reinterpret_cast<uint8_t*>(data.data()), data.size());
  RETURN_IF_ERROR(conn.ReadPayload({&sink, 1}));
  ASSIGN_OR_RETURN(ReplicationPosition at, store_->Apply(op, request.term(), request.seq(), data));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateReplicateReply(fbb, at.term, at.seq, fbb.CreateString(address_)));
  return conn.Reply(fbb);
}

}  // namespace unipool
