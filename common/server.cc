#include "unipool/common/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"

namespace unipool {
namespace {

std::string PeerName(const sockaddr_storage& ss, socklen_t len) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  return absl::StrFormat("%s:%s", host, port);
}

}  // namespace

absl::Status ServerConnection::ReadPayload(std::span<const std::span<uint8_t>> sinks) {
  uint64_t bytes = payload_bytes_;
  payload_bytes_ = 0;
  return unipool::ReadPayload(fd_, bytes, sinks);
}

absl::Status ServerConnection::DiscardPayload() {
  uint64_t bytes = payload_bytes_;
  payload_bytes_ = 0;
  return DiscardBytes(fd_, bytes);
}

absl::Status ServerConnection::Reply(const flatbuffers::FlatBufferBuilder& reply,
                                     std::span<const std::span<const uint8_t>> payload) {
  return WriteFrame(fd_, reply, payload);
}

FrameServer::FrameServer(ServerOptions options, FrameHandler* handler)
    : options_(std::move(options)), handler_(handler) {}

FrameServer::~FrameServer() { Stop(); }

absl::Status FrameServer::Start(const std::string& listen_address) {
  auto fd = ListenTcp(listen_address, &address_);
  if (!fd.ok()) return fd.status();
  listener_ = std::move(*fd);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void FrameServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listener_.valid()) ::shutdown(listener_.get(), SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<std::unique_ptr<Worker>> workers;
  {
    absl::MutexLock lock(&mu_);
    for (auto& worker : workers_) ::shutdown(worker->fd.get(), SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& worker : workers) worker->thread.join();
  listener_.Reset();
}

void FrameServer::AcceptLoop() {
  while (!stopping_.load()) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      LogWarning("accept failed: %s", std::strerror(errno));
      absl::SleepFor(absl::Milliseconds(50));  // e.g. EMFILE: do not spin
      continue;
    }
    std::string peer = PeerName(ss, len);
    absl::MutexLock lock(&mu_);
    ReapFinishedWorkers();
    if (live_connections_.load() >= options_.max_connections) {
      LogWarning("refusing connection from %s: %d connections open", peer,
                 options_.max_connections);
      ::close(fd);
      continue;
    }
    TuneSocket(fd);
    auto worker = std::make_unique<Worker>();
    worker->fd = Fd(fd);
    Worker* raw = worker.get();
    live_connections_.fetch_add(1);
    worker->thread = std::thread([this, raw, peer] { Serve(raw, peer); });
    workers_.push_back(std::move(worker));
  }
}

void FrameServer::ReapFinishedWorkers() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Status FrameServer::Handshake(ServerConnection& conn) {
  auto frame = ReadFrame(conn.fd_, options_.limits);
  if (!frame.ok()) return frame.status();
  const wire::Hello* hello = frame->message()->body_as_Hello();
  if (hello == nullptr) {
    return absl::FailedPreconditionError("expected Hello as the first message");
  }
  if (frame->payload_bytes != 0) return absl::InvalidArgumentError("Hello carries no payload");
  if (hello->protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("protocol version %u not supported: %s speaks version %u",
                        hello->protocol_version(), options_.name, kProtocolVersion));
  }
  conn.role_ = hello->role();
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options_.name);
  FinishMessage(fbb, wire::CreateHelloReply(fbb, kProtocolVersion, name));
  return conn.Reply(fbb);
}

void FrameServer::Serve(Worker* worker, std::string peer) {
  ServerConnection conn(worker->fd.get(), peer);
  absl::Status status = Handshake(conn);
  while (status.ok() && !stopping_.load()) {
    auto frame = ReadFrame(conn.fd_, options_.limits);
    if (!frame.ok()) {
      status = frame.status();
      break;
    }
    conn.payload_bytes_ = frame->payload_bytes;
    if (frame->message()->body_type() == wire::Body::Hello) {
      status = absl::FailedPreconditionError("Hello sent twice");
      break;
    }
    status = handler_->Handle(conn, *frame->message());
    if (status.ok() && conn.payload_bytes_ != 0) {
      // A handler that ignored a payload would desynchronise the stream.
      status = absl::InternalError("request payload left unread");
    }
  }
  // EOF or a broken socket ends a connection quietly; anything else was the
  // peer's fault or ours, so the peer is told why before we close.
  if (!status.ok() && status.code() != absl::StatusCode::kUnavailable) {
    LogWarning("closing connection from %s: %s", peer, status.ToString());
    flatbuffers::FlatBufferBuilder fbb;
    BuildError(fbb, status);
    (void)WriteFrame(conn.fd_, fbb);
  }
  ::shutdown(worker->fd.get(), SHUT_RDWR);
  live_connections_.fetch_sub(1);
  worker->done.store(true);
}

}  // namespace unipool
