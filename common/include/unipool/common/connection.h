// The client end of a unipool connection: dial, handshake, request/reply.
#ifndef UNIPOOL_COMMON_CONNECTION_H_
#define UNIPOOL_COMMON_CONNECTION_H_

#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "unipool/common/auth.h"
#include "unipool/common/frame.h"
#include "unipool/common/socket.h"
#include "unipool/common/tls.h"

namespace unipool {

struct ConnectionOptions {
  // Name sent in the handshake, shown in the server's log.
  std::string peer_name = "client";
  wire::Role role = wire::Role::Client;
  // Default 3 s: a loopback or Thunderbolt peer answers in microseconds.
  absl::Duration connect_timeout = absl::Seconds(3);
  // Default 30 s: longest silence tolerated inside one request (an 80 MiB
  // page over a slow link still moves bytes every second).
  absl::Duration io_timeout = absl::Seconds(30);
  // The cluster key or a token (auth.h) proven in the Hello; a token also
  // fixes the role. Default: the process's own (servers set it from
  // --key-file); null: none, for servers that do not authenticate.
  std::shared_ptr<const Credential> credential = ProcessCredential();
  // The CA that servers' certificates must be signed by (tls.h). Default:
  // the process's own (servers set it from --tls-ca); null: plain TCP.
  std::shared_ptr<const TlsClientConfig> tls = ProcessTls();
};

// One TCP connection that has completed the Hello handshake.
// Not thread-safe: one request at a time (pools hand a connection to one
// thread at a time).
class Connection {
 public:
  // Dials `address` (with options.tls: runs the TLS handshake) and performs
  // the Hello handshake. Unavailable when the peer cannot be reached;
  // FailedPrecondition when it speaks another version, or TLS where we do
  // not (or the other way round), or its certificate is not trusted;
  // Unauthenticated when either side fails to prove the key.
  // `address` may list several, "a:p,b:p" (a node's --advertise): they are
  // tried in order, the one that answered last time first.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& address,
                                                          const ConnectionOptions& options);

  // Sends one request (meta in `request`, payload the concatenation of
  // `payload`) and waits for its reply. The reply's payload is read into
  // `reply_sinks`, whose sizes must add up to the reply's payload size.
  // An Error reply becomes its status. After any failure other than an Error
  // reply the connection is broken() and must be dropped.
  absl::StatusOr<ReceivedFrame> Call(const flatbuffers::FlatBufferBuilder& request,
                                     std::span<const std::span<const uint8_t>> payload = {},
                                     std::span<const std::span<uint8_t>> reply_sinks = {},
                                     const PayloadSent* on_sent = nullptr);

  bool broken() const { return broken_; }
  const std::string& address() const { return address_; }
  // The socket, to poll or watch for the peer's hang-up (bytes go through
  // stream()).
  int fd() const { return fd_.get(); }
  Stream stream() const { return Stream{fd_.get(), tls_.get()}; }
  // The protocol version this connection speaks: kProtocolVersion, or one
  // minor older when the server is (protocol.h).
  uint32_t protocol_version() const { return protocol_version_; }

 private:
  static absl::StatusOr<std::unique_ptr<Connection>> OpenOne(const std::string& address,
                                                             const ConnectionOptions& options);
  // Dial and Hello, saying protocol version `version`.
  static absl::StatusOr<std::unique_ptr<Connection>> OpenSpeaking(const std::string& address,
                                                                  const ConnectionOptions& options,
                                                                  uint32_t version);
  // The challenge-response of auth.h, after our Hello got `reply`.
  absl::Status ProveIdentity(const ConnectionOptions& options, const wire::HelloReply& reply,
                             const Nonce& client_nonce);

  Connection(Fd fd, TlsSession tls, std::string address)
      : fd_(std::move(fd)), tls_(std::move(tls)), address_(std::move(address)) {}

  Fd fd_;
  TlsSession tls_;  // null: plain TCP; freed before fd_ closes
  std::string address_;
  bool broken_ = false;
  uint32_t protocol_version_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_CONNECTION_H_
