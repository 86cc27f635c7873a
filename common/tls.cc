#include "unipool/common/tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/socket.h"
#include "unipool/platform/net.h"

namespace unipool {
namespace {

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a
// closed peer; programs that link the client library need not ignore it.
// This BIO sends with the platform's no-SIGPIPE flags instead.
int FdOf(BIO* bio) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))); }

int BioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(FdOf(bio), data, static_cast<size_t>(size), platform::SendFlags());
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int BioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::recv(FdOf(bio), data, static_cast<size_t>(size), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

const BIO_METHOD* SocketMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "unipool socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    return m;
  }();
  return method;
}

absl::StatusOr<TlsSession> NewSession(SSL_CTX* ctx, int fd) {
  TlsSession ssl(SSL_new(ctx));
  BIO* bio = ssl != nullptr ? BIO_new(SocketMethod()) : nullptr;
  if (bio == nullptr) return absl::ResourceExhaustedError("TLS: " + TlsErrorText());
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl.get(), bio, bio);  // ssl owns it
  return ssl;
}

// TLS 1.3 only, EOF without close_notify read as a plain hang-up, and writes
// that may be retried with the same bytes elsewhere in memory.
SSL_CTX* NewContext(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);
  return ctx;
}

absl::Status NotLoaded(const char* what, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrFormat("cannot load the TLS %s %s: %s", what, path, TlsErrorText()));
}

absl::Status Readable(const char* what, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot read the TLS %s %s: %s", what, path, std::strerror(errno)));
  }
  std::fclose(f);
  return absl::OkStatus();
}

// A private key every user of the machine may read is no longer private.
// (Group access is left alone: Debian's ssl-cert group reads keys so.)
absl::Status PrivateToItsOwner(const std::string& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0 || (st.st_mode & 007) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrFormat("the TLS key %s may be read by every user (mode %04o): run chmod 600 %s",
                      key_file, st.st_mode & 07777, key_file));
}

// Why a client handshake failed, in words that say what to check.
absl::Status HandshakeFailure(SSL* ssl, int rc, std::string_view address) {
  int saved_errno = errno;
  int error = SSL_get_error(ssl, rc);
  long verify = SSL_get_verify_result(ssl);
  std::string reason = TlsErrorText();
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    return absl::UnavailableError(
        absl::StrFormat("TLS handshake with %s timed out: server not answering", address));
  }
  if (verify != X509_V_OK) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "TLS: the certificate of %s is not trusted: %s (is --tls-ca the CA that signed it, and "
        "is the server's name or address in it?)",
        address, X509_verify_cert_error_string(verify)));
  }
  if (reason.find("wrong version number") != std::string::npos ||
      reason.find("packet length too long") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrFormat("TLS: %s does not speak TLS (is it running without --tls-cert?)", address));
  }
  if (error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN) {
    return absl::UnavailableError(absl::StrFormat(
        "TLS handshake with %s: connection closed%s", address,
        saved_errno != 0 ? std::string(": ") + std::strerror(saved_errno) : std::string()));
  }
  return absl::FailedPreconditionError(
      absl::StrFormat("TLS handshake with %s failed: %s", address, reason));
}

absl::Mutex process_tls_mu;
std::shared_ptr<const TlsClientConfig> process_tls ABSL_GUARDED_BY(process_tls_mu);

}  // namespace

void SslFree::operator()(SSL* ssl) const { SSL_free(ssl); }

std::string TlsErrorText() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  // "error:0A00010B:SSL routines::wrong version number": keep the reason.
  const char* reason = std::strrchr(text, ':');
  return reason != nullptr && reason[1] != '\0' ? std::string(reason + 1) : std::string(text);
}

absl::StatusOr<std::shared_ptr<const TlsServerConfig>> TlsServerConfig::Load(
    const std::string& cert_file, const std::string& key_file) {
  if (absl::Status s = Readable("certificate", cert_file); !s.ok()) return s;
  if (absl::Status s = Readable("key", key_file); !s.ok()) return s;
  if (absl::Status s = PrivateToItsOwner(key_file); !s.ok()) return s;
  ERR_clear_error();
  SSL_CTX* ctx = NewContext(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError("TLS: " + TlsErrorText());
  std::shared_ptr<const TlsServerConfig> config(new TlsServerConfig(ctx));
  // Tickets would be written after the handshake, when the loop is not
  // writing; unipool connections are long-lived and do not resume.
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return NotLoaded("certificate", cert_file);
  }
  bool loaded = SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) == 1;
  std::string reason = loaded ? "" : TlsErrorText();
  if (loaded ? SSL_CTX_check_private_key(ctx) != 1 : reason == "key values mismatch") {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrFormat(
        "the TLS key %s does not belong to the certificate %s", key_file, cert_file));
  }
  if (!loaded) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot load the TLS key %s: %s", key_file, reason));
  }
  return config;
}

TlsServerConfig::~TlsServerConfig() { SSL_CTX_free(ctx_); }

absl::StatusOr<TlsSession> TlsServerConfig::NewSession(int fd) const {
  auto ssl = unipool::NewSession(ctx_, fd);
  if (ssl.ok()) SSL_set_accept_state(ssl->get());
  return ssl;
}

absl::StatusOr<Wait> TlsAcceptStep(SSL* ssl) {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl);
  if (rc == 1) return Wait::kNone;
  int saved_errno = errno;
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
      return Wait::kReadable;
    case SSL_ERROR_WANT_WRITE:
      return Wait::kWritable;
    case SSL_ERROR_SYSCALL:
    case SSL_ERROR_ZERO_RETURN:
      return absl::UnavailableError(absl::StrFormat(
          "TLS handshake: connection closed%s",
          saved_errno != 0 ? std::string(": ") + std::strerror(saved_errno) : std::string()));
    default:
      return absl::UnavailableError("TLS handshake failed: " + TlsErrorText());
  }
}

absl::StatusOr<std::shared_ptr<const TlsClientConfig>> TlsClientConfig::Load(
    const std::string& ca_file, std::string server_name) {
  if (absl::Status s = Readable("CA certificate", ca_file); !s.ok()) return s;
  ERR_clear_error();
  SSL_CTX* ctx = NewContext(TLS_client_method());
  if (ctx == nullptr) return absl::InternalError("TLS: " + TlsErrorText());
  std::shared_ptr<const TlsClientConfig> config(new TlsClientConfig(ctx, std::move(server_name)));
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return NotLoaded("CA certificate", ca_file);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return config;
}

TlsClientConfig::~TlsClientConfig() { SSL_CTX_free(ctx_); }

absl::StatusOr<TlsSession> TlsClientConfig::Handshake(int fd, std::string_view address) const {
  auto ssl = unipool::NewSession(ctx_, fd);
  if (!ssl.ok()) return ssl.status();
  SSL* s = ssl->get();
  SSL_set_connect_state(s);
  std::string host = server_name_;
  if (host.empty()) {
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return hp.status();
    host = hp->host;
  }
  // An address is checked against the certificate's IP entries, a name
  // against its DNS entries (and sent as SNI).
  X509_VERIFY_PARAM* param = SSL_get0_param(s);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
    ERR_clear_error();
    SSL_set_tlsext_host_name(s, host.c_str());
    if (SSL_set1_host(s, host.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrFormat("TLS: bad server name '%s'", host));
    }
  }
  ERR_clear_error();
  int rc = SSL_do_handshake(s);
  if (rc != 1) return HandshakeFailure(s, rc, address);
  return ssl;
}

absl::StatusOr<std::shared_ptr<const TlsClientConfig>> LoadTlsClientFromFlagOrEnv(
    const std::string& ca_file, std::string server_name) {
  std::string path = ca_file;
  if (path.empty()) {
    const char* env = std::getenv("UNIPOOL_TLS_CA");
    if (env != nullptr) path = env;
  }
  if (path.empty()) return std::shared_ptr<const TlsClientConfig>();
  return TlsClientConfig::Load(path, std::move(server_name));
}

void SetProcessTls(std::shared_ptr<const TlsClientConfig> tls) {
  absl::MutexLock lock(&process_tls_mu);
  process_tls = std::move(tls);
}

std::shared_ptr<const TlsClientConfig> ProcessTls() {
  absl::MutexLock lock(&process_tls_mu);
  return process_tls;
}

}  // namespace unipool
