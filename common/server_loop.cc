#include "server_loop.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_format.h"
#include "asio/post.hpp"
#include "server_conn.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/tls.h"
#include "unipool/platform/net.h"

namespace unipool {
namespace {

// File descriptors kept for everything that is not a client connection
// (RocksDB files, outgoing connections, the listener).
constexpr rlim_t kReservedFds = 256;
// How often deadlines are checked: often enough that the shortest timeout
// is kept to within a quarter of itself, and at least every second.
std::chrono::nanoseconds SweepPeriod(const ServerOptions& options) {
  absl::Duration shortest =
      std::min({options.handshake_timeout, options.frame_timeout, options.idle_timeout});
  absl::Duration period = std::clamp(shortest / 4, absl::Milliseconds(10), absl::Seconds(1));
  return std::chrono::nanoseconds(absl::ToInt64Nanoseconds(period));
}

// Quick requests of one connection served back to back before the loop
// turns to the others: a client pipelining many cannot hold the loop.
constexpr int kQuickPerTurn = 16;

void SetNonBlocking(int fd, bool on) {
  int value = on ? 1 : 0;
  ioctl(fd, FIONBIO, &value);
}

void SetIoTimeouts(int fd, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Raises the soft open-file limit to the hard one; returns the soft limit.
rlim_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur;
}

// The numeric host of an accepted peer, and "host:port" for logs.
void PeerNames(const sockaddr_storage& ss, socklen_t len, std::string* host, std::string* peer) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, h, sizeof h, p, sizeof p,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    *host = "?";
    *peer = "?";
    return;
  }
  *host = h;
  *peer = absl::StrFormat("%s:%s", h, p);
}

}  // namespace

ServerLoop::ServerLoop(const ServerOptions& options, std::atomic<int>* live, ServeFn serve,
                       QuickFn quick)
    : options_(options),
      live_(live),
      serve_(std::move(serve)),
      quick_(std::move(quick)),
      sweep_period_(SweepPeriod(options)),
      buffered_cap_(BufferedBytesCap(options)),
      work_(io_.get_executor()),
      pool_(options.max_workers) {}

ServerLoop::~ServerLoop() { Stop(); }

absl::Status ServerLoop::Start(Fd listener) {
  rlim_t fds = RaiseFdLimit();
  max_connections_ = static_cast<int>(
      std::clamp<rlim_t>(fds > kReservedFds ? fds - kReservedFds : 1, 1, options_.max_connections));
  SetNonBlocking(listener.get(), true);
  listener_ = std::make_unique<asio::posix::stream_descriptor>(io_);
  accept_retry_ = std::make_unique<asio::steady_timer>(io_);
  sweep_timer_ = std::make_unique<asio::steady_timer>(io_);
  Sweep();
  asio::error_code ec;
  listener_->assign(listener.Release(), ec);
  if (ec) return absl::InternalError("cannot watch the listening socket: " + ec.message());
  WaitAccept();
  thread_ = std::thread([this] { io_.run(); });
  return absl::OkStatus();
}

void ServerLoop::Stop() {
  if (stopping_.exchange(true) || !thread_.joinable()) return;
  asio::post(io_, [this] {
    asio::error_code ignored;
    listener_->close(ignored);
    accept_retry_->cancel();
    sweep_timer_->cancel();
    auto conns = conns_;
    for (auto& [raw, c] : conns) {
      if (c->busy) {
        ::shutdown(c->socket.native_handle(), SHUT_RDWR);  // its worker finishes soon
      } else {
        Close(c, "");
      }
    }
  });
  pool_.Shutdown();  // every handed-over connection has been handed back
  asio::post(io_, [this] {
    auto conns = conns_;
    for (auto& [raw, c] : conns) Close(c, "");
    work_.reset();
  });
  thread_.join();
}

void ServerLoop::WaitAccept() {
  listener_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this](const asio::error_code& ec) {
                          if (!ec && !stopping_.load()) AcceptReady();
                        });
}

void ServerLoop::AcceptReady() {
  while (true) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = platform::Accept(listener_->native_handle(), reinterpret_cast<sockaddr*>(&ss), &len)
                 .Release();
    if (fd >= 0) {
      std::string host, peer;
      PeerNames(ss, len, &host, &peer);
      Admit(fd, host, peer);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    // e.g. EMFILE: the pending connection stays queued; try again shortly
    // instead of spinning on a listener that stays readable.
    LogWarning("accept failed: %s", std::strerror(errno));
    accept_retry_->expires_after(std::chrono::milliseconds(100));
    accept_retry_->async_wait([this](const asio::error_code& ec) {
      if (!ec && !stopping_.load()) WaitAccept();
    });
    return;
  }
  WaitAccept();
}

void ServerLoop::Admit(int fd, const std::string& host, const std::string& peer) {
  if (live_->load() >= max_connections_ && !MakeRoom()) {
    ::close(fd);
    ++refused_;
    // Logged at 1, 2, 4, 8... refusals: a flood must not flood the log.
    if ((refused_ & (refused_ - 1)) == 0) {
      LogWarning(
          "refusing connection from %s: %d connections open (the server's cap), none of "
          "them idle or unauthenticated (%u refused so far)",
          peer, max_connections_, refused_);
    }
    return;
  }
  ConnPtr oldest;
  if (unauthenticated_.size() >= static_cast<size_t>(options_.max_unauthenticated) &&
      (oldest = OldestUnauthenticated()) != nullptr) {
    CloseForCap(oldest,
                absl::StrFormat("%d connections are in their handshake (the server's cap): this, "
                                "the oldest, was closed for a new one",
                                options_.max_unauthenticated));
  }
  live_->fetch_add(1);
  TuneSocket(fd);
  SetIoTimeouts(fd, options_.frame_timeout);
  auto c = std::make_shared<Conn>(io_, fd, peer, host);
  c->seq = next_seq_++;
  conns_[c.get()] = c;
  unauthenticated_[c->seq] = c;
  asio::error_code ec;
  c->socket.assign(fd, ec);
  if (ec) {
    ::close(fd);
    Close(c, "cannot watch the socket: " + ec.message());
    return;
  }
  ArmTimer(c, options_.handshake_timeout, "no Hello within");
  if (options_.tls == nullptr) {
    ReadMore(c);
    return;
  }
  auto tls = options_.tls->NewSession(fd);
  if (!tls.ok()) {
    Close(c, std::string(tls.status().message()));
    return;
  }
  c->tls = std::move(*tls);
  c->conn.stream_.ssl = c->tls.get();
  Sniff(c);
}

void ServerLoop::Await(const ConnPtr& c, Wait wait, std::function<void()> next) {
  auto type = wait == Wait::kWritable ? asio::posix::stream_descriptor::wait_write
                                      : asio::posix::stream_descriptor::wait_read;
  c->socket.async_wait(type, [this, c, next = std::move(next)](const asio::error_code& ec) {
    if (c->closed) return;
    if (ec) {
      Close(c, ec.message());
      return;
    }
    next();
  });
}

void ServerLoop::Sniff(const ConnPtr& c) {
  uint8_t first = 0;
  ssize_t n = ::recv(c->socket.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    Await(c, Wait::kReadable, [this, c] { Sniff(c); });
    return;
  }
  if (n <= 0) {
    Close(c, n == 0 || errno == ECONNRESET ? "" : std::strerror(errno));
    return;
  }
  if (first == (kFrameMagic & 0xff)) {
    c->plain_on_tls = true;  // read its Hello as plain bytes, then say why we refuse it
    c->conn.stream_.ssl = nullptr;
    ReadMore(c);
    return;
  }
  AcceptTls(c);
}

void ServerLoop::AcceptTls(const ConnPtr& c) {
  auto wait = TlsAcceptStep(c->tls.get());
  if (!wait.ok()) {
    Close(c, std::string(wait.status().message()));
  } else if (*wait == Wait::kNone) {
    ReadMore(c);
  } else {
    Await(c, *wait, [this, c] { AcceptTls(c); });
  }
}

void ServerLoop::ReadMore(const ConnPtr& c) {
  c->frames_ok = true;
  while (!c->closed) {
    if (c->quick_in_a_row >= kQuickPerTurn) {
      c->quick_in_a_row = 0;
      asio::post(io_, [this, c] { ReadMore(c); });  // after the others' events
      return;
    }
    if (size_t growth = c->Growth(); growth > 0 && !CountGrowth(c, growth)) return;
    asio::mutable_buffer buffer = c->NextBuffer();
    auto got = ReadSome(c->conn.stream_, buffer.data(), buffer.size());
    if (!got.ok() || got->closed) {
      // A hang-up ends a connection quietly, as a client hanging up is normal.
      Close(c, got.ok() ? "" : std::string(got.status().message()));
      return;
    }
    if (got->bytes == 0) {
      c->quick_in_a_row = 0;
      Await(c, got->wait, [this, c] { ReadMore(c); });
      return;
    }
    if (!TakeBytes(c, got->bytes)) return;
  }
}

bool ServerLoop::TakeBytes(const ConnPtr& c, size_t n) {
  // Before the handshake the handshake deadline stands; after it, a frame
  // once begun must arrive within frame_timeout.
  if (!c->frame_started() && c->conn.handshaken_) {
    ArmTimer(c, options_.frame_timeout, "frame not completed within");
  }
  if (c->header_have < kFrameHeaderBytes) {
    c->header_have += n;
    return c->header_have < kFrameHeaderBytes || HeaderComplete(c);
  }
  if (c->meta_have < c->meta_bytes) {
    c->meta_have += n;
    return c->meta_have < c->meta_bytes || MetaComplete(c);
  }
  c->payload_have += n;  // a quick request's
  return c->payload_have < c->frame.payload_bytes || ServeHere(c);
}

bool ServerLoop::HeaderComplete(const ConnPtr& c) {
  const FrameLimits& limits = c->conn.handshaken_ ? options_.limits : options_.hello_limits;
  auto sizes = DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderBytes>(c->header), limits);
  if (!sizes.ok()) {
    flatbuffers::FlatBufferBuilder fbb;
    BuildError(fbb, sizes.status());
    (void)WriteFrame(c->conn.stream_, fbb);  // best effort: the socket is idle
    Close(c, sizes.status().message().data());
    return false;
  }
  c->meta_bytes = sizes->meta_bytes;
  c->frame.payload_bytes = sizes->payload_bytes;
  return true;
}

bool ServerLoop::MetaComplete(const ConnPtr& c) {
  if (c->plain_on_tls) {
    flatbuffers::FlatBufferBuilder fbb;
    BuildError(fbb, absl::FailedPreconditionError(
                        "this server speaks only TLS: give the client the CA's certificate "
                        "(--tls-ca, ClientOptions::tls_ca or $UNIPOOL_TLS_CA)"));
    (void)WriteFrame(c->conn.stream_, fbb);  // best effort, as above
    Close(c, "it spoke plain frames to this TLS-only port");
    return false;
  }
  if (!quick_(c->conn, c->frame)) {
    HandOver(c);
    return false;
  }
  // Quick: its payload, if any, is read here first (NextBuffer).
  return c->frame.payload_bytes > 0 || ServeHere(c);
}

bool ServerLoop::ServeHere(const ConnPtr& c) {
  ++c->quick_in_a_row;
  c->conn.held_payload_ = std::span<const uint8_t>(c->payload.data(), c->payload_have);
  c->conn.gathered_replies_ = &c->replies;
  absl::Status status = serve_(c->conn, c->frame);
  c->conn.gathered_replies_ = nullptr;
  c->conn.held_payload_ = {};
  FrameDone(c);
  if (!status.ok()) {
    // serve_ logged why and gathered an Error for the peer: best effort.
    (void)WriteSome(c->conn.stream_, c->replies.data(), c->replies.size());
    Close(c, "");
    return false;
  }
  return SendReplies(c);
}

bool ServerLoop::SendReplies(const ConnPtr& c) {
  while (c->replies_sent < c->replies.size()) {
    auto wrote = WriteSome(c->conn.stream_, c->replies.data() + c->replies_sent,
                           c->replies.size() - c->replies_sent);
    if (!wrote.ok() || wrote->closed) {
      Close(c, wrote.ok() ? "" : std::string(wrote.status().message()));
      return false;
    }
    if (wrote->bytes == 0) {
      ArmTimer(c, options_.frame_timeout, "reply not read within");
      Await(c, wrote->wait, [this, c] {
        if (SendReplies(c)) ReadMore(c);
      });
      return false;
    }
    c->replies_sent += wrote->bytes;
  }
  // A small buffer serves the next reply; an idle connection keeps no large one.
  if (c->replies.capacity() > kMetaChunk) {
    std::vector<uint8_t>().swap(c->replies);
  } else {
    c->replies.clear();
  }
  c->replies_sent = 0;
  ArmTimer(c, options_.idle_timeout, "idle for");
  return true;
}

void ServerLoop::ArmTimer(const ConnPtr& c, absl::Duration after, const char* what) {
  c->deadline = Clock::now() + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(after));
  c->deadline_what = what;
  c->deadline_after = after;
}

void ServerLoop::Sweep() {
  Clock::time_point now = Clock::now();
  std::vector<ConnPtr> late;
  for (const auto& [raw, c] : conns_) {
    if (!c->busy && c->deadline <= now) late.push_back(c);  // a worker's: the frame timeout
  }
  for (const ConnPtr& c : late) {
    Close(c, absl::StrFormat("%s %s", c->deadline_what, absl::FormatDuration(c->deadline_after)));
  }
  sweep_timer_->expires_after(sweep_period_);
  sweep_timer_->async_wait([this](const asio::error_code& ec) {
    if (!ec && !stopping_.load()) Sweep();
  });
}

void ServerLoop::HandOver(const ConnPtr& c) {
  if (stopping_.load()) {
    Close(c, "");
    return;
  }
  c->busy = true;  // the sweep leaves it to the worker
  pool_.Run([this, c] {
    int fd = c->socket.native_handle();
    SetNonBlocking(fd, false);  // handlers use blocking I/O, bounded by frame_timeout
    absl::Status status = serve_(c->conn, c->frame);
    SetNonBlocking(fd, true);
    asio::post(io_, [this, c, ok = status.ok()] {
      c->busy = false;
      FrameDone(c);
      if (!ok || stopping_.load()) {
        Close(c, "");  // serve_ logged why
        return;
      }
      if (c->conn.handshaken_ && c->identity.empty()) {
        Authenticated(c);
        if (c->closed) return;
      }
      if (c->conn.handshaken_) {
        ArmTimer(c, options_.idle_timeout, "idle for");
      } else {  // a Hello answered, its proof still to come
        ArmTimer(c, options_.handshake_timeout, "no HelloProof within");
      }
      ReadMore(c);
    });
  });
}

void ServerLoop::Close(const ConnPtr& c, const std::string& why) {
  if (c->closed) return;
  c->closed = true;
  if (!why.empty()) LogWarning("closing connection from %s: %s", c->conn.peer(), why);
  asio::error_code ignored;
  c->socket.close(ignored);
  conns_.erase(c.get());
  if (c->identity.empty()) {
    unauthenticated_.erase(c->seq);
  } else if (auto it = identities_.find(c->identity); it != identities_.end()) {
    it->second.erase(c->seq);
    if (it->second.empty()) identities_.erase(it);
  }
  buffered_ -= c->counted;
  c->counted = 0;
  live_->fetch_sub(1);
}

}  // namespace unipool
