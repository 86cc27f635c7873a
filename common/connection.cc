#include "unipool/common/connection.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"

namespace unipool {

namespace {

// Which address of a multi-address peer ("a:p,b:p": a node on Thunderbolt
// IP and Ethernet) answered last, so later connections try it first.
absl::Mutex answered_mu(absl::kConstInit);
absl::flat_hash_map<std::string, std::string>& LastAnswered() {
  static auto* answered = new absl::flat_hash_map<std::string, std::string>();
  return *answered;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& address,
                                                             const ConnectionOptions& options) {
  if (address.find(',') == std::string::npos) return OpenOne(address, options);
  std::vector<std::string> addresses = absl::StrSplit(address, ',', absl::SkipEmpty());
  {
    absl::MutexLock lock(&answered_mu);
    auto it = LastAnswered().find(address);
    if (it != LastAnswered().end()) {
      auto at = std::find(addresses.begin(), addresses.end(), it->second);
      if (at != addresses.end()) std::rotate(addresses.begin(), at, at + 1);
    }
  }
  absl::Status last = absl::InvalidArgumentError("no address in " + address);
  for (const std::string& one : addresses) {
    absl::StatusOr<std::unique_ptr<Connection>> conn = OpenOne(one, options);
    if (conn.ok()) {
      absl::MutexLock lock(&answered_mu);
      std::string& answered = LastAnswered()[address];
      if (answered != one) LogInfo("%s: reached at %s", address, one);
      answered = one;
      return conn;
    }
    last = conn.status();
    // Only a peer that cannot be reached is worth another address.
    if (last.code() != absl::StatusCode::kUnavailable &&
        last.code() != absl::StatusCode::kDeadlineExceeded) {
      return last;
    }
  }
  return last;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::OpenOne(const std::string& address,
                                                                const ConnectionOptions& options) {
  auto conn = OpenSpeaking(address, options, kProtocolVersion);
  if (conn.ok() || conn.status().code() != absl::StatusCode::kFailedPrecondition) return conn;
  // A server one minor older refused our Hello, naming its version: speak it.
  absl::string_view refusal = conn.status().message();
  std::optional<uint32_t> older =
      FallbackProtocolVersion(std::string_view(refusal.data(), refusal.size()));
  if (!older.has_value()) return conn;
  return OpenSpeaking(address, options, *older);
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::OpenSpeaking(
    const std::string& address, const ConnectionOptions& options, uint32_t version) {
  auto fd = DialTcp(address, options.connect_timeout, options.io_timeout);
  if (!fd.ok()) return fd.status();
  TlsSession tls;
  if (options.tls != nullptr) {
    auto session = options.tls->Handshake(fd->get(), address);
    if (!session.ok()) return session.status();
    tls = std::move(*session);
  }
  std::unique_ptr<Connection> conn(new Connection(std::move(*fd), std::move(tls), address));
  const Credential* credential = options.credential.get();
  bool token = credential != nullptr && !credential->is_cluster_key;
  wire::Role role = token ? credential->role : options.role;
  Nonce client_nonce = RandomNonce();
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options.peer_name);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> nonce, prefix;
  if (credential != nullptr) {
    nonce = fbb.CreateVector(client_nonce.data(), client_nonce.size());
    prefix = fbb.CreateVector(reinterpret_cast<const uint8_t*>(credential->prefix.data()),
                              credential->prefix.size());
  }
  // Only a token with quotas names them: a server before quotas then still
  // serves the tokens made before them.
  wire::TokenQuota quota;
  bool has_quota = token && credential->quota.any();
  if (has_quota) {
    quota = wire::TokenQuota(credential->quota.storage_bytes, credential->quota.pin_bytes,
                             credential->quota.reservation_bytes);
  }
  FinishMessage(fbb, wire::CreateHello(fbb, version, role, name, nonce, prefix, token,
                                       has_quota ? &quota : nullptr));
  conn->protocol_version_ = version;
  auto reply = conn->Call(fbb);
  absl::Status status = reply.status();
  if (status.ok()) {
    const wire::HelloReply* hello_reply = reply->message()->body_as_HelloReply();
    status = hello_reply == nullptr ? absl::UnavailableError("unexpected reply")
                                    : conn->ProveIdentity(options, *hello_reply, client_nonce);
  }
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrFormat("handshake with %s: %s", address, status.message()));
  }
  return conn;
}

absl::Status Connection::ProveIdentity(const ConnectionOptions& options,
                                       const wire::HelloReply& reply, const Nonce& client_nonce) {
  const Credential* credential = options.credential.get();
  if (credential == nullptr) {
    if (reply.proof() == nullptr) return absl::OkStatus();  // neither side authenticates
    return absl::UnauthenticatedError(
        "the server requires the cluster key or a token (--key-file or $UNIPOOL_KEY_FILE)");
  }
  if (reply.nonce() == nullptr || reply.nonce()->size() != kNonceBytes) {
    return absl::UnauthenticatedError(
        "the server did not prove it holds the cluster key (is it running without --key-file?)");
  }
  bool token = !credential->is_cluster_key;
  wire::Role role = token ? credential->role : options.role;
  Nonce server_nonce;
  std::copy(reply.nonce()->begin(), reply.nonce()->end(), server_nonce.begin());
  Secret expected = HandshakeProof(credential->secret, ProofSide::kServer, role, credential->prefix,
                                   token, client_nonce, server_nonce);
  if (!ProofMatches(expected, reply.proof())) {
    return absl::UnauthenticatedError(
        "the server's proof does not match our key: it is not a server of this pool");
  }
  Secret proof = HandshakeProof(credential->secret, ProofSide::kClient, role, credential->prefix,
                                token, client_nonce, server_nonce);
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateHelloProof(fbb, fbb.CreateVector(proof.data(), proof.size())));
  auto ack = Call(fbb);
  if (!ack.ok()) return ack.status();
  if (ack->message()->body_as_Ack() == nullptr) {
    return absl::UnavailableError("unexpected reply to HelloProof");
  }
  return absl::OkStatus();
}

absl::StatusOr<ReceivedFrame> Connection::Call(const flatbuffers::FlatBufferBuilder& request,
                                               std::span<const std::span<const uint8_t>> payload,
                                               std::span<const std::span<uint8_t>> reply_sinks,
                                               const PayloadSent* on_sent) {
  if (broken_) return absl::UnavailableError("connection to " + address_ + " is broken");
  broken_ = true;  // until the whole exchange succeeded
  if (absl::Status s = WriteFrame(stream(), request, payload, on_sent); !s.ok()) {
    return absl::UnavailableError(absl::StrFormat("%s: %s", address_, s.message()));
  }
  auto reply = ReadFrame(stream(), FrameLimits{});
  if (!reply.ok()) {
    return absl::UnavailableError(absl::StrFormat("%s: %s", address_, reply.status().message()));
  }
  if (const wire::Error* error = reply->message()->body_as_Error()) {
    // The server closes after an Error: the connection stays broken.
    absl::Status s = StatusFromWire(error->status());
    if (s.ok()) s = absl::UnknownError("error reply without a status");
    return s;
  }
  if (absl::Status s = ReadPayload(stream(), reply->payload_bytes, reply_sinks); !s.ok()) {
    return absl::Status(s.code(), absl::StrFormat("%s: %s", address_, s.message()));
  }
  broken_ = false;
  return reply;
}

}  // namespace unipool
