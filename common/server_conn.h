// ServerLoop's record of one connection (server_loop.cc, server_caps.cc).
// Loop thread only, except while `busy` (see Conn).
#ifndef UNIPOOL_COMMON_SERVER_CONN_H_
#define UNIPOOL_COMMON_SERVER_CONN_H_

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "asio/buffer.hpp"
#include "asio/io_context.hpp"
#include "asio/posix/stream_descriptor.hpp"
#include "server_loop.h"

namespace unipool {

// A frame's meta is read in pieces of at most this much, so memory follows
// the bytes received rather than the header's claim.
inline constexpr size_t kMetaChunk = 64 * 1024;

// One connection. Between requests the loop owns it; while `busy` a worker
// does (and the loop only reads `busy` and the fd, to shut it down on Stop).
struct ServerLoop::Conn {
  Conn(asio::io_context& io, int fd, std::string peer_name, std::string host_name)
      : socket(io), conn(Stream{.fd = fd}, std::move(peer_name)), host(std::move(host_name)) {}

  // Where the next bytes of the current frame go: the header's remainder,
  // the next piece of the meta, or of a quick request's payload (both grown
  // as they arrive).
  asio::mutable_buffer NextBuffer() {
    if (header_have < kFrameHeaderBytes) {
      return asio::buffer(header + header_have, kFrameHeaderBytes - header_have);
    }
    if (meta_have < meta_bytes) return Grow(frame.meta, meta_have, meta_bytes);
    return Grow(payload, payload_have, frame.payload_bytes);
  }
  static asio::mutable_buffer Grow(std::vector<uint8_t>& bytes, size_t have, size_t want) {
    size_t step = std::min<size_t>(kMetaChunk, want - have);
    if (bytes.size() < have + step) bytes.resize(have + step);
    return asio::buffer(bytes.data() + have, step);
  }
  // The bytes NextBuffer is about to allocate (0: none).
  size_t Growth() const {
    if (header_have < kFrameHeaderBytes) return 0;
    if (meta_have < meta_bytes) return GrowthOf(frame.meta, meta_have, meta_bytes);
    return GrowthOf(payload, payload_have, frame.payload_bytes);
  }
  static size_t GrowthOf(const std::vector<uint8_t>& bytes, size_t have, size_t want) {
    size_t end = have + std::min<size_t>(kMetaChunk, want - have);
    return end > bytes.size() ? end - bytes.size() : 0;
  }
  // Bytes allocated for the current frame.
  size_t held() const { return frame.meta.size() + payload.size(); }
  // Between requests, with nothing half-read or half-sent.
  bool idle() const { return !busy && !frame_started() && replies.empty(); }
  bool frame_started() const { return header_have > 0; }
  void ResetFrame() {
    header_have = meta_have = payload_have = 0;
    meta_bytes = 0;
    frame = ReceivedFrame();
    std::vector<uint8_t>().swap(payload);
  }

  asio::posix::stream_descriptor socket;
  // When the sweep closes the connection unless it makes progress, and why.
  Clock::time_point deadline = Clock::time_point::max();
  const char* deadline_what = "";
  absl::Duration deadline_after;
  TlsSession tls;             // with a TLS port; conn's stream reads through it
  bool plain_on_tls = false;  // the peer spoke plain frames to a TLS port
  ServerConnection conn;
  const std::string host;
  uint8_t header[kFrameHeaderBytes];
  size_t header_have = 0;
  uint32_t meta_bytes = 0;  // 0 until the header is complete and valid
  size_t meta_have = 0;
  ReceivedFrame frame;
  std::vector<uint8_t> payload;  // a quick request's, read before it is served
  size_t payload_have = 0;
  std::vector<uint8_t> replies;  // gathered by ServeHere, not yet all sent
  size_t replies_sent = 0;
  int quick_in_a_row = 0;  // served here since the loop last turned to others
  bool closed = false;
  bool busy = false;
  uint64_t seq = 0;        // admission order
  std::string identity;    // empty until the handshake completes
  bool capped = true;      // false for the cluster key
  bool frames_ok = false;  // an Error frame can be sent (TLS, if any, is up)
  uint64_t counted = 0;    // of held(), counted against the buffered-bytes cap
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SERVER_CONN_H_
