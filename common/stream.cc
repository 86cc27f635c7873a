#include "unipool/common/stream.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/common/tls.h"
#include "unipool/platform/net.h"

namespace unipool {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// ------------------------------------------------------------ plain TCP

absl::Status PlainSendAll(int fd, std::span<iovec> iov_in) {
  std::vector<iovec> iov(iov_in.begin(), iov_in.end());
  size_t index = 0;
  while (index < iov.size()) {
    if (iov[index].iov_len == 0) {
      ++index;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(iov.size() - index, IOV_MAX));
    msghdr msg{};
    msg.msg_iov = &iov[index];
    msg.msg_iovlen = count;
    ssize_t n = ::sendmsg(fd, &msg, platform::SendFlags());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::UnavailableError("send timed out: peer not reading");
      }
      return absl::UnavailableError(absl::StrFormat("send failed: %s", ErrnoText(errno)));
    }
    size_t sent = static_cast<size_t>(n);
    while (sent > 0 && index < iov.size()) {
      size_t step = std::min(sent, iov[index].iov_len);
      iov[index].iov_base = static_cast<char*>(iov[index].iov_base) + step;
      iov[index].iov_len -= step;
      sent -= step;
      if (iov[index].iov_len == 0) ++index;
    }
  }
  return absl::OkStatus();
}

absl::Status PlainRecvAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::recv(fd, p, size, 0);
    if (n == 0) return absl::UnavailableError("connection closed by peer");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::UnavailableError("receive timed out: peer not answering");
      }
      return absl::UnavailableError(absl::StrFormat("receive failed: %s", ErrnoText(errno)));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<ReadProgress> PlainReadSome(int fd, void* data, size_t size) {
  while (true) {
    ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
    if (n > 0) return ReadProgress{.bytes = static_cast<size_t>(n)};
    if (n == 0) return ReadProgress{.closed = true};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadProgress{.wait = Wait::kReadable};
    if (errno == ECONNRESET) return ReadProgress{.closed = true};
    return absl::UnavailableError(absl::StrFormat("receive failed: %s", ErrnoText(errno)));
  }
}

absl::StatusOr<ReadProgress> PlainWriteSome(int fd, const void* data, size_t size) {
  while (true) {
    ssize_t n = ::send(fd, data, size, platform::SendFlags() | MSG_DONTWAIT);
    if (n >= 0) return ReadProgress{.bytes = static_cast<size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadProgress{.wait = Wait::kWritable};
    if (errno == ECONNRESET || errno == EPIPE) return ReadProgress{.closed = true};
    return absl::UnavailableError(absl::StrFormat("send failed: %s", ErrnoText(errno)));
  }
}

// ------------------------------------------------------------ TLS

// What a failed SSL_read_ex / SSL_write_ex means for its caller.
struct TlsOutcome {
  Wait wait = Wait::kNone;  // the socket was not ready (blocking: its timeout hit)
  bool closed = false;      // the peer hung up
  absl::Status error;       // anything else
};

TlsOutcome ClassifyTls(SSL* ssl, int rc) {
  int saved_errno = errno;
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
      return {.wait = Wait::kReadable};
    case SSL_ERROR_WANT_WRITE:
      return {.wait = Wait::kWritable};
    case SSL_ERROR_ZERO_RETURN:
      return {.closed = true};
    case SSL_ERROR_SYSCALL:
      if (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE) {
        return {.closed = true};
      }
      return {.error = absl::UnavailableError(ErrnoText(saved_errno))};
    default:
      return {.error = absl::UnavailableError("TLS: " + TlsErrorText())};
  }
}

absl::Status TlsWriteAll(SSL* ssl, const uint8_t* data, size_t size) {
  while (size > 0) {
    ERR_clear_error();
    size_t written = 0;
    int rc = SSL_write_ex(ssl, data, size, &written);
    if (rc <= 0) {
      TlsOutcome outcome = ClassifyTls(ssl, rc);
      if (outcome.wait != Wait::kNone) {
        return absl::UnavailableError("send timed out: peer not reading");
      }
      if (outcome.closed) return absl::UnavailableError("send failed: connection closed by peer");
      return absl::UnavailableError(absl::StrFormat("send failed: %s", outcome.error.message()));
    }
    data += written;
    size -= written;
  }
  return absl::OkStatus();
}

// Small pieces (a frame's header and meta) are gathered into one TLS record;
// large ones (payloads) are encrypted from where they lie.
absl::Status TlsSendAll(SSL* ssl, std::span<iovec> iov) {
  constexpr size_t kGatherBytes = 16 << 10;  // one TLS record's worth
  std::vector<uint8_t> gathered;
  for (const iovec& piece : iov) {
    const auto* bytes = static_cast<const uint8_t*>(piece.iov_base);
    if (piece.iov_len < kGatherBytes && gathered.size() + piece.iov_len <= kGatherBytes) {
      gathered.insert(gathered.end(), bytes, bytes + piece.iov_len);
      continue;
    }
    if (!gathered.empty()) {
      if (absl::Status s = TlsWriteAll(ssl, gathered.data(), gathered.size()); !s.ok()) return s;
      gathered.clear();
    }
    if (piece.iov_len < kGatherBytes) {
      gathered.insert(gathered.end(), bytes, bytes + piece.iov_len);
    } else if (absl::Status s = TlsWriteAll(ssl, bytes, piece.iov_len); !s.ok()) {
      return s;
    }
  }
  return gathered.empty() ? absl::OkStatus() : TlsWriteAll(ssl, gathered.data(), gathered.size());
}

absl::Status TlsRecvAll(SSL* ssl, void* data, size_t size) {
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    ERR_clear_error();
    size_t got = 0;
    int rc = SSL_read_ex(ssl, p, size, &got);
    if (rc <= 0) {
      TlsOutcome outcome = ClassifyTls(ssl, rc);
      if (outcome.wait != Wait::kNone) {
        return absl::UnavailableError("receive timed out: peer not answering");
      }
      if (outcome.closed) return absl::UnavailableError("connection closed by peer");
      return absl::UnavailableError(absl::StrFormat("receive failed: %s", outcome.error.message()));
    }
    p += got;
    size -= got;
  }
  return absl::OkStatus();
}

// What a non-blocking SSL_read_ex / SSL_write_ex that returned `rc` after
// moving `bytes` means for an event loop.
absl::StatusOr<ReadProgress> TlsProgress(SSL* ssl, int rc, size_t bytes) {
  if (rc > 0) return ReadProgress{.bytes = bytes};
  TlsOutcome outcome = ClassifyTls(ssl, rc);
  if (!outcome.error.ok()) return outcome.error;
  return ReadProgress{.wait = outcome.wait, .closed = outcome.closed};
}

absl::StatusOr<ReadProgress> TlsReadSome(SSL* ssl, void* data, size_t size) {
  ERR_clear_error();
  size_t got = 0;
  int rc = SSL_read_ex(ssl, data, size, &got);
  return TlsProgress(ssl, rc, got);
}

absl::StatusOr<ReadProgress> TlsWriteSome(SSL* ssl, const void* data, size_t size) {
  ERR_clear_error();
  size_t written = 0;
  int rc = SSL_write_ex(ssl, data, size, &written);
  return TlsProgress(ssl, rc, written);
}

}  // namespace

absl::Status SendAll(Stream stream, std::span<iovec> iov) {
  return stream.ssl != nullptr ? TlsSendAll(stream.ssl, iov) : PlainSendAll(stream.fd, iov);
}

absl::Status RecvAll(Stream stream, void* data, size_t size) {
  return stream.ssl != nullptr ? TlsRecvAll(stream.ssl, data, size)
                               : PlainRecvAll(stream.fd, data, size);
}

absl::Status DiscardBytes(Stream stream, uint64_t size) {
  char sink[64 * 1024];
  while (size > 0) {
    size_t step = std::min<uint64_t>(size, sizeof sink);
    absl::Status s = RecvAll(stream, sink, step);
    if (!s.ok()) return s;
    size -= step;
  }
  return absl::OkStatus();
}

absl::StatusOr<ReadProgress> ReadSome(Stream stream, void* data, size_t size) {
  return stream.ssl != nullptr ? TlsReadSome(stream.ssl, data, size)
                               : PlainReadSome(stream.fd, data, size);
}

absl::StatusOr<ReadProgress> WriteSome(Stream stream, const void* data, size_t size) {
  return stream.ssl != nullptr ? TlsWriteSome(stream.ssl, data, size)
                               : PlainWriteSome(stream.fd, data, size);
}

}  // namespace unipool
