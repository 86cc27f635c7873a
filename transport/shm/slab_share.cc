#include "unipool/shm/slab_share.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "shm_protocol.h"
#include "unipool/common/log.h"

namespace unipool {
namespace {

// A handshake that does not arrive in this time is dropped (a client that
// connected and hung cannot hold the node's only sharing thread).
constexpr int kHandshakeTimeoutMs = 1000;

sockaddr_un AbstractAddress(const std::string& name, socklen_t* length) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // sun_path[0] = 0 puts the name in the abstract namespace.
  size_t n = std::min(name.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path + 1, name.data(), n);
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return addr;
}

void SetMessage(ShmReply& reply, std::string_view text) {
  size_t n = std::min(text.size(), sizeof reply.message - 1);
  std::memcpy(reply.message, text.data(), n);
  reply.message[n] = 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SlabShare>> SlabShare::Start(const Slab* slab,
                                                            const std::string& data_address) {
  std::string name = ShmSocketName(data_address);
  Fd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) {
    return absl::InternalError(absl::StrFormat("unix socket: %s", std::strerror(errno)));
  }
  socklen_t length = 0;
  sockaddr_un addr = AbstractAddress(name, &length);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(
          absl::StrFormat("another process shares a slab as @%s", name));
    }
    return absl::InternalError(absl::StrFormat("bind @%s: %s", name, std::strerror(errno)));
  }
  if (listen(listener.get(), 128) != 0) {
    return absl::InternalError(absl::StrFormat("listen @%s: %s", name, std::strerror(errno)));
  }
  Fd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid())
    return absl::InternalError(absl::StrFormat("eventfd: %s", std::strerror(errno)));
  auto share =
      std::unique_ptr<SlabShare>(new SlabShare(slab, std::move(listener), std::move(wake)));
  share->thread_ = std::thread([s = share.get()] { s->Run(); });
  return share;
}

SlabShare::SlabShare(const Slab* slab, Fd listener, Fd wake)
    : slab_(slab), listener_(std::move(listener)), wake_(std::move(wake)) {}

SlabShare::~SlabShare() {
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
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
  ucred peer{};
  socklen_t peer_length = sizeof peer;
  if (request.magic != kShmMagic || request.version != kShmVersion) {
    reply.code = static_cast<int32_t>(absl::StatusCode::kFailedPrecondition);
    SetMessage(reply,
               absl::StrFormat("shm protocol version %u is not %u", request.version, kShmVersion));
  } else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) != 0 ||
             (peer.uid != getuid() && peer.uid != 0)) {
    reply.code = static_cast<int32_t>(absl::StatusCode::kPermissionDenied);
    SetMessage(reply, absl::StrFormat("the slab is shared only with uid %u (or root)", getuid()));
  } else {
    reply.slab_id = slab_->id();
    reply.map_offset = slab_->fd_offset();
    reply.slab_size = slab_->size();
  }
  iovec iov{&reply, sizeof reply};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (reply.code == 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int slab_fd = slab_->fd();
    std::memcpy(CMSG_DATA(c), &slab_fd, sizeof slab_fd);
  }
  ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
  return sent == static_cast<ssize_t>(sizeof reply) && reply.code == 0;
}

void SlabShare::Run() {
  std::vector<Fd> clients;
  while (true) {
    std::vector<pollfd> fds = {{wake_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
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
      Fd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client.valid() && static_cast<int>(clients.size()) < kMaxClients && Serve(client.get())) {
        clients.push_back(std::move(client));
      }
    }
    clients_.store(clients.size(), std::memory_order_relaxed);
  }
  clients_.store(0, std::memory_order_relaxed);
}

}  // namespace unipool
