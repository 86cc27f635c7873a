#include "unipool/common/server.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "server_loop.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/common/protocol.h"

namespace unipool {

absl::Status ServerConnection::ReadPayload(std::span<const std::span<uint8_t>> sinks) {
  uint64_t bytes = payload_bytes_;
  payload_bytes_ = 0;
  if (gathered_replies_ != nullptr) return CopyPayload(held_payload_, sinks);
  return unipool::ReadPayload(stream_, bytes, sinks);
}

absl::Status ServerConnection::DiscardPayload() {
  uint64_t bytes = payload_bytes_;
  payload_bytes_ = 0;
  if (gathered_replies_ != nullptr) return absl::OkStatus();  // held, dropped with the frame
  return DiscardBytes(stream_, bytes);
}

absl::Status ServerConnection::Reply(const flatbuffers::FlatBufferBuilder& reply,
                                     std::span<const std::span<const uint8_t>> payload) {
  if (gathered_replies_ != nullptr) {
    AppendFrame(*gathered_replies_, reply, payload);
    return absl::OkStatus();
  }
  return WriteFrame(stream_, reply, payload);
}

namespace {

bool IsLoopback(const std::string& address) {
  auto hp = ParseHostPort(address);
  return hp.ok() &&
         (hp->host.rfind("127.", 0) == 0 || hp->host == "::1" || hp->host == "localhost");
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& options) {
  const std::pair<const char*, absl::Duration> durations[] = {
      {"handshake timeout", options.handshake_timeout},
      {"idle timeout", options.idle_timeout},
      {"frame timeout", options.frame_timeout}};
  for (const auto& [name, value] : durations) {
    if (value <= absl::ZeroDuration() || value == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s must be a positive, finite duration, not %s", name, absl::FormatDuration(value)));
    }
  }
  const std::pair<const char*, int> caps[] = {
      {"max connections", options.max_connections},
      {"max unauthenticated connections", options.max_unauthenticated},
      {"max connections per identity", options.max_connections_per_identity},
      {"max workers", options.max_workers}};
  for (const auto& [name, value] : caps) {
    if (value < 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s must be at least 1, not %d", name, value));
    }
  }
  if (options.max_buffered_bytes != 0 &&
      options.max_buffered_bytes < options.limits.max_meta_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "max buffered bytes (%u) must be at least the largest meta a frame may carry (%u)",
        options.max_buffered_bytes, options.limits.max_meta_bytes));
  }
  return absl::OkStatus();
}

uint64_t BufferedBytesCap(const ServerOptions& options) {
  if (options.max_buffered_bytes != 0) return options.max_buffered_bytes;
  return std::max(kMinBufferedBytes, PhysicalMemoryBytes() / 16);
}

FrameServer::FrameServer(ServerOptions options, FrameHandler* handler)
    : options_(std::move(options)), handler_(handler) {}

FrameServer::~FrameServer() { Stop(); }

absl::Status FrameServer::Start(const std::string& listen_address) {
  if (absl::Status s = ValidateServerOptions(options_); !s.ok()) return s;
  auto fd = ListenTcp(listen_address, &address_);
  if (!fd.ok()) return fd.status();
  if (options_.cluster_key == nullptr && !options_.insecure && !IsLoopback(address_)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "refusing to serve on %s without a cluster key: anyone who can reach it could read, "
        "write and remove everything. Give --key-file (made by unipoolctl keygen), or "
        "--insecure on a network you trust",
        address_));
  }
  loop_ = std::make_unique<ServerLoop>(
      options_, &live_connections_,
      [this](ServerConnection& conn, const ReceivedFrame& frame) { return Serve(conn, frame); },
      [this](ServerConnection& conn, const ReceivedFrame& frame) { return IsQuick(conn, frame); });
  return loop_->Start(std::move(*fd));
}

void FrameServer::Stop() {
  if (loop_ != nullptr) loop_->Stop();
}

absl::Status FrameServer::Handshake(ServerConnection& conn, const wire::Message& message) {
  if (conn.pending_ != nullptr) return CheckPeerProof(conn, message);
  const wire::Hello* hello = message.body_as_Hello();
  if (hello == nullptr) {
    return absl::FailedPreconditionError("expected Hello as the first message");
  }
  // Keep this text: a client one minor newer reads "speaks version N" from
  // it and reconnects speaking N (FallbackProtocolVersion).
  if (!ServesProtocolVersion(kProtocolVersion, hello->protocol_version())) {
    return absl::FailedPreconditionError(
        absl::StrFormat("protocol version %u not supported: %s speaks version %u",
                        hello->protocol_version(), options_.name, kProtocolVersion));
  }
  conn.protocol_version_ = hello->protocol_version();
  if (options_.cluster_key != nullptr) return ChallengePeer(conn, *hello);
  conn.principal_.role = hello->role();
  conn.handshaken_ = true;
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options_.name);
  FinishMessage(fbb, wire::CreateHelloReply(fbb, kProtocolVersion, name));
  return conn.Reply(fbb);
}

absl::Status FrameServer::ChallengePeer(ServerConnection& conn, const wire::Hello& hello) {
  if (hello.nonce() == nullptr || hello.nonce()->size() != kNonceBytes) {
    return absl::UnauthenticatedError(
        absl::StrFormat("%s requires authentication: give the client the cluster key or a token "
                        "(--key-file, ClientOptions::key_file or $UNIPOOL_KEY_FILE)",
                        options_.name));
  }
  std::string_view prefix = AsStringView(hello.prefix());
  if (prefix.size() > kMaxKeyBytes) return absl::InvalidArgumentError("Hello prefix too long");
  auto pending = std::make_unique<ServerConnection::PendingProof>();
  std::copy(hello.nonce()->begin(), hello.nonce()->end(), pending->client_nonce.begin());
  pending->server_nonce = RandomNonce();
  pending->token = hello.token();
  TenantQuota quota;
  if (pending->token && hello.quota() != nullptr) {
    quota = {hello.quota()->storage(), hello.quota()->pin(), hello.quota()->reservation()};
  }
  pending->secret = pending->token
                        ? TokenSecret(options_.cluster_key->secret, hello.role(), prefix, quota)
                        : options_.cluster_key->secret;
  Secret proof = HandshakeProof(pending->secret, ProofSide::kServer, hello.role(), prefix,
                                pending->token, pending->client_nonce, pending->server_nonce);
  conn.principal_.role = hello.role();
  conn.principal_.prefix = std::string(prefix);
  conn.principal_.quota = quota;
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options_.name);
  auto nonce = fbb.CreateVector(pending->server_nonce.data(), pending->server_nonce.size());
  auto proof_vec = fbb.CreateVector(proof.data(), proof.size());
  FinishMessage(fbb, wire::CreateHelloReply(fbb, kProtocolVersion, name, nonce, proof_vec));
  conn.pending_ = std::move(pending);
  return conn.Reply(fbb);
}

absl::Status FrameServer::CheckPeerProof(ServerConnection& conn, const wire::Message& message) {
  const wire::HelloProof* proof = message.body_as_HelloProof();
  if (proof == nullptr) return absl::FailedPreconditionError("expected HelloProof after Hello");
  std::unique_ptr<ServerConnection::PendingProof> pending = std::move(conn.pending_);
  Principal& who = conn.principal_;
  Secret expected = HandshakeProof(pending->secret, ProofSide::kClient, who.role, who.prefix,
                                   pending->token, pending->client_nonce, pending->server_nonce);
  if (!ProofMatches(expected, proof->proof())) {
    return absl::UnauthenticatedError(absl::StrFormat(
        "authentication failed: the %s's proof does not match (wrong cluster key, or a token "
        "not made for this pool, role and prefix)",
        absl::AsciiStrToLower(wire::EnumNameRole(who.role))));
  }
  who.authenticated = true;
  who.cluster_key = !pending->token;
  conn.handshaken_ = true;
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  return conn.Reply(fbb);
}

absl::Status FrameServer::Dispatch(ServerConnection& conn, const ReceivedFrame& frame) {
  if (frame.message()->body_type() == wire::Body::Hello) {
    return absl::FailedPreconditionError("Hello sent twice");
  }
  conn.payload_bytes_ = frame.payload_bytes;
  absl::Status status = handler_->Handle(conn, *frame.message());
  if (status.ok() && conn.payload_bytes_ != 0) {
    // A handler that ignored a payload would desynchronise the stream.
    status = absl::InternalError("request payload left unread");
  }
  return status;
}

bool FrameServer::IsQuick(ServerConnection& conn, const ReceivedFrame& frame) const {
  // Handshakes stay on workers: proofs cost a few HMACs, and a flood of
  // Hellos must not occupy the loop.
  // A large meta (a batch of thousands of keys) is long work anyway, and is
  // not verified twice (here and in Serve).
  conn.meta_verified_ = conn.handshaken_ && frame.payload_bytes <= kQuickPayloadBytes &&
                        frame.meta.size() <= kQuickMetaBytes && VerifyFrameMeta(frame).ok();
  return conn.meta_verified_ && handler_->IsQuick(*frame.message());
}

absl::Status FrameServer::Serve(ServerConnection& conn, const ReceivedFrame& frame) {
  // IsQuick, asked about this frame just before, may have verified it.
  absl::Status status = conn.meta_verified_ ? absl::OkStatus() : VerifyFrameMeta(frame);
  conn.meta_verified_ = false;
  if (status.ok())
    status = conn.handshaken_ ? Dispatch(conn, frame) : Handshake(conn, *frame.message());
  // EOF or a broken socket ends a connection quietly; anything else was the
  // peer's fault or ours, so the peer is told why before we close.
  if (!status.ok() && status.code() != absl::StatusCode::kUnavailable) {
    LogWarning("closing connection from %s: %s", conn.peer(), status.ToString());
    flatbuffers::FlatBufferBuilder fbb;
    BuildError(fbb, status);
    (void)conn.Reply(fbb);
  }
  return status;
}

}  // namespace unipool
