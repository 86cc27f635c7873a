#include "unipool/shm/slab_share.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "shm_protocol.h"
#include "unipool/common/log.h"
#include "unipool/platform/net.h"

namespace unipool {
namespace {

// A handshake that does not arrive in this time is dropped (a client that
// connected and hung cannot hold the node's only sharing thread).
constexpr int kHandshakeTimeoutMs = 1000;

void SetMessage(ShmReply& reply, std::string_view text) {
  size_t n = std::min(text.size(), sizeof reply.message - 1);
  std::memcpy(reply.message, text.data(), n);
  reply.message[n] = 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SlabShare>> SlabShare::Start(const Slab* slab,
                                                            const std::string& data_address) {
  std::string name = ShmSocketName(data_address);
  auto listener = platform::ListenLocal(name);
  if (!listener.ok()) return listener.status();
  auto wake = platform::Wakeup::Create();
  if (!wake.ok()) {
    platform::RemoveLocal(name);
    return wake.status();
  }
  auto share =
      std::unique_ptr<SlabShare>(new SlabShare(slab, name, std::move(*listener), std::move(*wake)));
  share->thread_ = std::thread([s = share.get()] { s->Run(); });
  return share;
}

SlabShare::SlabShare(const Slab* slab, std::string name, Fd listener, platform::Wakeup wake)
    : slab_(slab), name_(std::move(name)), listener_(std::move(listener)), wake_(std::move(wake)) {}

SlabShare::~SlabShare() {
  wake_.Signal();
  if (thread_.joinable()) thread_.join();
  platform::RemoveLocal(name_);
}

bool SlabShare::Serve(int fd) {
  handshakes_.fetch_add(1, std::memory_order_relaxed);
  ShmRequest request{};
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, kHandshakeTimeoutMs) != 1 ||
      recv(fd, &request, sizeof request, MSG_WAITALL) != static_cast<ssize_t>(sizeof request)) {
    return false;
  }
  ShmReply reply;
  absl::StatusOr<uid_t> peer = platform::PeerUid(fd);
  if (request.magic != kShmMagic || request.version != kShmVersion) {
    reply.code = static_cast<int32_t>(absl::StatusCode::kFailedPrecondition);
    SetMessage(reply,
               absl::StrFormat("shm protocol version %u is not %u", request.version, kShmVersion));
  } else if (!peer.ok() || (*peer != getuid() && *peer != 0)) {
    reply.code = static_cast<int32_t>(absl::StatusCode::kPermissionDenied);
    SetMessage(reply, absl::StrFormat("the slab is shared only with uid %u (or root)", getuid()));
  } else {
    reply.slab_id = slab_->id();
    reply.map_offset = slab_->fd_offset();
    reply.slab_size = slab_->size();
  }
  ssize_t sent = platform::SendWithFd(fd, &reply, sizeof reply, reply.code == 0 ? slab_->fd() : -1);
  return sent == static_cast<ssize_t>(sizeof reply) && reply.code == 0;
}

void SlabShare::Run() {
  std::vector<Fd> clients;
  while (true) {
    std::vector<pollfd> fds = {{wake_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    for (const Fd& c : clients) fds.push_back({c.get(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      LogError("slab share: poll: %s; no longer sharing the slab", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) break;
    // A client's socket only ever becomes readable when it closes (or
    // misbehaves): either way it is done.
    std::vector<Fd> open;
    for (size_t i = 0; i < clients.size(); ++i) {
      if (fds[i + 2].revents != 0) continue;  // closes clients[i]
      open.push_back(std::move(clients[i]));
    }
    clients = std::move(open);
    if (fds[1].revents & POLLIN) {
      Fd client = platform::Accept(listener_.get(), nullptr, nullptr);
      if (client.valid() && static_cast<int>(clients.size()) < kMaxClients && Serve(client.get())) {
        clients.push_back(std::move(client));
      }
    }
    clients_.store(clients.size(), std::memory_order_relaxed);
  }
  clients_.store(0, std::memory_order_relaxed);
}

}  // namespace unipool
