// Optional TLS 1.3 (OpenSSL) under unipool's frames, for clusters on shared
// networks. Off unless configured:
// - a server given a certificate and its key (--tls-cert, --tls-key) speaks
//   only TLS on its TCP port; a peer that speaks plain frames to it gets one
//   Error frame saying so and is closed;
// - a client given the CA's certificate (--tls-ca, ClientOptions::tls_ca,
//   $UNIPOOL_TLS_CA) speaks TLS to every server it dials and accepts only a
//   certificate signed by that CA for the host it dialled (a name or an IP
//   address), or for the one name given as tls_name.
// Servers dial each other (node to directory, directory to node, node to
// node), so a server with a certificate also needs the CA. The cluster key's
// challenge-response (auth.h) still runs inside TLS: TLS adds secrecy and
// integrity on the wire, the key decides who may talk. Shared memory and
// RDMA do not go over TCP and are not affected.
#ifndef UNIPOOL_COMMON_TLS_H_
#define UNIPOOL_COMMON_TLS_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "unipool/common/stream.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace unipool {

struct SslFree {
  void operator()(SSL* ssl) const;
};
// One TLS connection's state; its socket is owned elsewhere.
using TlsSession = std::unique_ptr<SSL, SslFree>;

// A server's certificate and key. Thread-safe (read-only after Load).
class TlsServerConfig {
 public:
  // FailedPrecondition naming the file when a file is missing, unreadable or
  // not PEM, or when the key does not belong to the certificate.
  static absl::StatusOr<std::shared_ptr<const TlsServerConfig>> Load(const std::string& cert_file,
                                                                     const std::string& key_file);
  ~TlsServerConfig();
  // A session over an accepted socket; TlsAcceptStep runs its handshake.
  absl::StatusOr<TlsSession> NewSession(int fd) const;

 private:
  explicit TlsServerConfig(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* const ctx_;
};

// One non-blocking step of a server's handshake: Wait::kNone once done,
// else what the socket must become before the next step. Unavailable (with
// OpenSSL's reason) when the peer is not a TLS 1.3 client we can talk to.
absl::StatusOr<Wait> TlsAcceptStep(SSL* ssl);

// What a client trusts. Thread-safe (read-only after Load).
class TlsClientConfig {
 public:
  // `ca_file`: PEM certificate(s) of the CA(s) that sign the servers'.
  // `server_name`: the name every server's certificate must carry; empty:
  // the host part of the address dialled. FailedPrecondition naming the file
  // when it cannot be loaded.
  static absl::StatusOr<std::shared_ptr<const TlsClientConfig>> Load(const std::string& ca_file,
                                                                     std::string server_name = "");
  ~TlsClientConfig();
  // Runs a blocking handshake over a connected socket to `address`
  // (HOST:PORT). FailedPrecondition when the server does not speak TLS or
  // its certificate is not trusted for that host (the message says which
  // and what to check); Unavailable when the connection fails.
  absl::StatusOr<TlsSession> Handshake(int fd, std::string_view address) const;

 private:
  TlsClientConfig(SSL_CTX* ctx, std::string server_name)
      : ctx_(ctx), server_name_(std::move(server_name)) {}
  SSL_CTX* const ctx_;
  const std::string server_name_;
};

// `ca_file`, else $UNIPOOL_TLS_CA, else none (nullptr: plain TCP).
absl::StatusOr<std::shared_ptr<const TlsClientConfig>> LoadTlsClientFromFlagOrEnv(
    const std::string& ca_file, std::string server_name = "");

// What this process's own outgoing connections use by default (set once by
// a server's main from its flags, before any thread starts). Null: plain.
void SetProcessTls(std::shared_ptr<const TlsClientConfig> tls);
std::shared_ptr<const TlsClientConfig> ProcessTls();

// OpenSSL's last error on this thread as one line (and the queue emptied).
std::string TlsErrorText();

}  // namespace unipool

#endif  // UNIPOOL_COMMON_TLS_H_
