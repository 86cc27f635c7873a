// A raw TCP peer for tests that play a hostile or broken client: it sends
// whatever bytes a test wants and reads frames back.
// Thread safety: not thread-safe.
#ifndef UNIPOOL_TESTING_RAW_PEER_H_
#define UNIPOOL_TESTING_RAW_PEER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/common/frame.h"
#include "unipool/common/protocol.h"
#include "unipool/common/socket.h"
#include "unipool/platform/net.h"

namespace unipool::testing {

inline std::vector<uint8_t> Header(uint32_t magic, uint32_t meta_bytes, uint64_t payload_bytes) {
  std::vector<uint8_t> h(kFrameHeaderBytes);
  for (int i = 0; i < 4; ++i) h[i] = static_cast<uint8_t>(magic >> (8 * i));
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<uint8_t>(meta_bytes >> (8 * i));
  for (int i = 0; i < 8; ++i) h[8 + i] = static_cast<uint8_t>(payload_bytes >> (8 * i));
  return h;
}

// A raw TCP connection that says whatever a test wants.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address) {
    auto fd = DialTcp(address, absl::Seconds(3), absl::Seconds(10));
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (fd.ok()) fd_ = std::move(*fd);
  }
  // From a chosen loopback source address (e.g. "127.0.0.2"), as another
  // host would connect; connected() tells whether it worked.
  RawPeer(const std::string& address, const std::string& source) {
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return;
    Fd fd = platform::Socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in from{}, to{};
    from.sin_family = to.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    inet_pton(AF_INET, hp->host.c_str(), &to.sin_addr);
    to.sin_port = htons(hp->port);
    timeval tv{10, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        ::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      return;
    }
    fd_ = std::move(fd);
  }
  bool connected() const { return fd_.valid(); }
  // True when the server has closed this connection (checked without waiting).
  bool ClosedByServer() {
    char byte;
    ssize_t n = ::recv(fd_.get(), &byte, 1, MSG_DONTWAIT | MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  void Send(const std::vector<uint8_t>& bytes) {
    ::send(fd_.get(), bytes.data(), bytes.size(), platform::SendFlags());
  }
  void SendFrame(const flatbuffers::FlatBufferBuilder& fbb, uint64_t claimed_payload = 0,
                 const std::vector<uint8_t>& payload = {}) {
    auto header = Header(kFrameMagic, fbb.GetSize(), claimed_payload);
    Send(header);
    Send(std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()));
    if (!payload.empty()) Send(payload);
  }
  void Hello(uint32_t version = kProtocolVersion) {
    flatbuffers::FlatBufferBuilder fbb;
    FinishMessage(fbb, wire::CreateHello(fbb, version, wire::Role::Client));
    SendFrame(fbb);
  }
  // Reads one frame; payload discarded.
  absl::StatusOr<ReceivedFrame> Receive() {
    auto frame = ReadFrame(Stream{.fd = fd_.get()}, FrameLimits{});
    if (frame.ok()) (void)DiscardBytes(Stream{.fd = fd_.get()}, frame->payload_bytes);
    return frame;
  }
  // The status carried by an Error frame, or a failure.
  absl::Status ExpectError() {
    auto frame = Receive();
    if (!frame.ok()) return absl::InternalError("no reply: " + frame.status().ToString());
    const wire::Error* error = frame->message()->body_as_Error();
    if (error == nullptr) return absl::InternalError("reply is not an Error");
    return StatusFromWire(error->status());
  }
  // True when the server closed its end (EOF after any pending bytes).
  bool Closed() {
    char byte;
    for (;;) {
      ssize_t n = ::recv(fd_.get(), &byte, 1, 0);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }
  void HalfClose() { ::shutdown(fd_.get(), SHUT_WR); }
  // Sends `frame` over and over, never reading, until the socket has taken
  // nothing for `patience` (the server stopped reading) or `max_bytes` went.
  // Returns the bytes sent.
  size_t Flood(const flatbuffers::FlatBufferBuilder& fbb, size_t max_bytes,
               absl::Duration patience = absl::Milliseconds(500)) {
    std::vector<uint8_t> frame = Header(kFrameMagic, fbb.GetSize(), 0);
    frame.insert(frame.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
    size_t sent = 0;
    while (sent < max_bytes) {
      size_t at = sent % frame.size();
      ssize_t n = ::send(fd_.get(), frame.data() + at, frame.size() - at,
                         platform::SendFlags() | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
      pollfd p{.fd = fd_.get(), .events = POLLOUT};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(patience))) <= 0) break;
    }
    return sent;
  }

 private:
  Fd fd_;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_RAW_PEER_H_
