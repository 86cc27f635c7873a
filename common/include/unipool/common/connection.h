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
};

// One TCP connection that has completed the Hello handshake.
// Not thread-safe: one request at a time (pools hand a connection to one
// thread at a time).
class Connection {
 public:
  // Dials `address` and performs the handshake. Unavailable when the peer
  // cannot be reached; FailedPrecondition when it speaks another version;
  // Unauthenticated when either side fails to prove the key.
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
  int fd() const { return fd_.get(); }

 private:
  // The challenge-response of auth.h, after our Hello got `reply`.
  absl::Status ProveIdentity(const ConnectionOptions& options, const wire::HelloReply& reply,
                             const Nonce& client_nonce);

  Connection(Fd fd, std::string address) : fd_(std::move(fd)), address_(std::move(address)) {}

  Fd fd_;
  std::string address_;
  bool broken_ = false;
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_CONNECTION_H_
