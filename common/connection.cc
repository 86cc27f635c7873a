#include "unipool/common/connection.h"

#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"

namespace unipool {

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& address,
                                                             const ConnectionOptions& options) {
  auto fd = DialTcp(address, options.connect_timeout, options.io_timeout);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<Connection> conn(new Connection(std::move(*fd), address));
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options.peer_name);
  FinishMessage(fbb, wire::CreateHello(fbb, kProtocolVersion, options.role, name));
  auto reply = conn->Call(fbb);
  if (!reply.ok()) {
    return absl::Status(reply.status().code(), absl::StrFormat("handshake with %s: %s", address,
                                                               reply.status().message()));
  }
  if (reply->message()->body_as_HelloReply() == nullptr) {
    return absl::UnavailableError(absl::StrFormat("handshake with %s: unexpected reply", address));
  }
  return conn;
}

absl::StatusOr<ReceivedFrame> Connection::Call(const flatbuffers::FlatBufferBuilder& request,
                                               std::span<const std::span<const uint8_t>> payload,
                                               std::span<const std::span<uint8_t>> reply_sinks) {
  if (broken_) return absl::UnavailableError("connection to " + address_ + " is broken");
  broken_ = true;  // until the whole exchange succeeded
  if (absl::Status s = WriteFrame(fd_.get(), request, payload); !s.ok()) {
    return absl::UnavailableError(absl::StrFormat("%s: %s", address_, s.message()));
  }
  auto reply = ReadFrame(fd_.get(), FrameLimits{});
  if (!reply.ok()) {
    return absl::UnavailableError(absl::StrFormat("%s: %s", address_, reply.status().message()));
  }
  if (const wire::Error* error = reply->message()->body_as_Error()) {
    // The server closes after an Error: the connection stays broken.
    absl::Status s = StatusFromWire(error->status());
    if (s.ok()) s = absl::UnknownError("error reply without a status");
    return s;
  }
  if (absl::Status s = ReadPayload(fd_.get(), reply->payload_bytes, reply_sinks); !s.ok()) {
    return absl::Status(s.code(), absl::StrFormat("%s: %s", address_, s.message()));
  }
  broken_ = false;
  return reply;
}

}  // namespace unipool
