// A connected TCP socket as frames see it: plain bytes, or TLS over the
// socket (tls.h). Frame code (frame.h) reads and writes only through these
// functions, so framing has one implementation whatever the wire.
//
// A Stream does not own the socket or the TLS session; whoever made them
// keeps them alive while the Stream is used. One thread at a time.
#ifndef UNIPOOL_COMMON_STREAM_H_
#define UNIPOOL_COMMON_STREAM_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

typedef struct ssl_st SSL;  // OpenSSL's, as <openssl/ssl.h> declares it

namespace unipool {

struct Stream {
  int fd = -1;
  SSL* ssl = nullptr;  // null: plain TCP
};

// Blocking I/O (the socket's SO_RCVTIMEO / SO_SNDTIMEO bound each wait).
// Send every byte of every iovec. Unavailable on a broken connection.
absl::Status SendAll(Stream stream, std::span<iovec> iov);
// Receive exactly `size` bytes. Unavailable on EOF or error.
absl::Status RecvAll(Stream stream, void* data, size_t size);
// Receive and drop `size` bytes.
absl::Status DiscardBytes(Stream stream, uint64_t size);

// Non-blocking I/O, for an event loop.
enum class Wait { kNone, kReadable, kWritable };
struct ReadProgress {
  size_t bytes = 0;         // read now (0: nothing yet)
  Wait wait = Wait::kNone;  // with bytes == 0: call again once the socket is this
  bool closed = false;      // the peer hung up (EOF or reset): not an error worth a log
};
// Reads what has arrived, up to `size` bytes, without blocking (TLS: what
// decrypts from the records that arrived). Unavailable on a broken stream
// (bad TLS records included).
absl::StatusOr<ReadProgress> ReadSome(Stream stream, void* data, size_t size);
// Writes what the socket takes now of `size` bytes, without blocking; the
// result counts the bytes written as ReadSome counts those read. TLS: after
// a wait, call again with the same remaining bytes.
absl::StatusOr<ReadProgress> WriteSome(Stream stream, const void* data, size_t size);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_STREAM_H_
