// Sockets, Linux build: flags at creation (SOCK_CLOEXEC, SOCK_NONBLOCK,
// accept4), MSG_NOSIGNAL, abstract-namespace same-host sockets, SO_PEERCRED,
// eventfd.
#include <fcntl.h>
#include <pty.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "platform_internal.h"
#include "unipool/platform/net.h"

namespace unipool::platform {
namespace {

// sun_path[0] = 0 puts the name in the abstract namespace: no file to clean
// up, reachable only from this machine's network namespace.
sockaddr_un AbstractAddress(const std::string& name, socklen_t* length) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t n = std::min(name.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path + 1, name.data(), n);
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return addr;
}

}  // namespace

Fd Socket(int domain, int type, int protocol, bool non_blocking) {
  return Fd(::socket(domain, type | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), protocol));
}

Fd Accept(int listener, sockaddr* address, socklen_t* length) {
  return Fd(::accept4(listener, address, length, SOCK_CLOEXEC));
}

int SendFlags() { return MSG_NOSIGNAL; }

int ReceiveFdFlags() { return MSG_CMSG_CLOEXEC; }

bool Pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0; }

bool OpenPty(int* master, int* slave, int rows, int cols) {
  winsize size{};
  size.ws_row = static_cast<unsigned short>(rows);
  size.ws_col = static_cast<unsigned short>(cols);
  return openpty(master, slave, nullptr, nullptr, &size) == 0;
}

absl::StatusOr<Fd> ListenLocal(const std::string& name) {
  Fd listener = Socket(AF_UNIX, SOCK_STREAM, 0);
  if (!listener.valid()) {
    return absl::InternalError(absl::StrFormat("unix socket: %s", std::strerror(errno)));
  }
  socklen_t length = 0;
  sockaddr_un addr = AbstractAddress(name, &length);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(absl::StrFormat("another process listens on @%s", name));
    }
    return absl::InternalError(absl::StrFormat("bind @%s: %s", name, std::strerror(errno)));
  }
  if (listen(listener.get(), 128) != 0) {
    return absl::InternalError(absl::StrFormat("listen @%s: %s", name, std::strerror(errno)));
  }
  return listener;
}

absl::StatusOr<Fd> ConnectLocal(const std::string& name) {
  Fd sock = Socket(AF_UNIX, SOCK_STREAM, 0);
  if (!sock.valid()) {
    return absl::InternalError(absl::StrFormat("unix socket: %s", std::strerror(errno)));
  }
  socklen_t length = 0;
  sockaddr_un addr = AbstractAddress(name, &length);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0) {
    return absl::UnavailableError(
        absl::StrFormat("nobody listens on @%s: %s", name, std::strerror(errno)));
  }
  return sock;
}

void RemoveLocal(const std::string&) {}

std::string LocalDisplayName(const std::string& name) { return "@" + name; }

absl::StatusOr<std::string> RuntimeDir() {
  return absl::UnimplementedError("the Linux build keeps same-host sockets in no folder");
}

absl::StatusOr<uid_t> PeerUid(int fd) {
  ucred peer{};
  socklen_t length = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    return absl::InternalError(absl::StrFormat("SO_PEERCRED: %s", std::strerror(errno)));
  }
  return peer.uid;
}

absl::StatusOr<Wakeup> Wakeup::Create() {
  Wakeup wakeup;
  wakeup.read_ = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeup.read_.valid()) {
    return absl::InternalError(absl::StrFormat("eventfd: %s", std::strerror(errno)));
  }
  return wakeup;
}

void Wakeup::Signal() {
  uint64_t one = 1;
  (void)!write(read_.get(), &one, sizeof one);
}

}  // namespace unipool::platform
