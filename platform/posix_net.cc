// Sockets, POSIX/macOS build: fcntl after socket() and accept(),
// SO_NOSIGPIPE, same-host sockets as files in a per-user 0700 folder,
// getpeereid, a pipe for wake-ups.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <util.h>  // openpty
#else
#include <pty.h>
#endif

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "platform_internal.h"
#include "unipool/platform/net.h"

namespace unipool::platform {
namespace {

// Close-on-exec and no SIGPIPE for a new socket; false (errno set) on failure.
bool Configure(int fd, bool non_blocking) {
  if (!SetCloseOnExec(fd)) return false;
  if (non_blocking && !SetNonBlocking(fd, true)) return false;
#if defined(SO_NOSIGPIPE)
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) return false;
#endif
  return true;
}

// A file name for `name` that fits sun_path (104 bytes on macOS) with the
// folder: readable when short, else a prefix and a hash (FNV-1a, stable
// across builds and standard libraries).
std::string SocketFileName(const std::string& name) {
  std::string file;
  for (char c : name) file += (isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '_';
  constexpr size_t kMaxFileName = 40;
  if (file.size() <= kMaxFileName) return file;
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
  return absl::StrFormat("%s-%016x", file.substr(0, kMaxFileName - 17), hash);
}

absl::StatusOr<sockaddr_un> PathAddress(const std::string& name) {
  auto dir = RuntimeDir();
  if (!dir.ok()) return dir.status();
  std::string path = *dir + "/" + SocketFileName(name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(
        absl::StrFormat("socket path %s is longer than the %d bytes a Unix socket allows: set "
                        "$UNIPOOL_RUNTIME_DIR to a shorter folder",
                        path, sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

int Connect(int fd, const sockaddr_un& addr) {
  return connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
}

}  // namespace

Fd Socket(int domain, int type, int protocol, bool non_blocking) {
  Fd fd(::socket(domain, type, protocol));
  if (fd.valid() && !Configure(fd.get(), non_blocking)) return Fd();
  return fd;
}

Fd Accept(int listener, sockaddr* address, socklen_t* length) {
  Fd fd(::accept(listener, address, length));
  // Accepted sockets do not inherit O_NONBLOCK portably: clear it.
  if (fd.valid() && (!Configure(fd.get(), false) || !SetNonBlocking(fd.get(), false))) return Fd();
  return fd;
}

int SendFlags() {
#if defined(SO_NOSIGPIPE)
  return 0;  // set on every socket by Configure
#else
  return MSG_NOSIGNAL;  // this build on Linux, which has no SO_NOSIGPIPE
#endif
}

int ReceiveFdFlags() { return 0; }

bool Pipe(int fds[2]) {
  if (pipe(fds) != 0) return false;
  if (SetCloseOnExec(fds[0]) && SetCloseOnExec(fds[1])) return true;
  int saved = errno;
  close(fds[0]);
  close(fds[1]);
  errno = saved;
  return false;
}

bool OpenPty(int* master, int* slave, int rows, int cols) {
  winsize size{};
  size.ws_row = static_cast<unsigned short>(rows);
  size.ws_col = static_cast<unsigned short>(cols);
  return openpty(master, slave, nullptr, nullptr, &size) == 0;
}

absl::StatusOr<std::string> RuntimeDir() {
  const char* env = std::getenv("UNIPOOL_RUNTIME_DIR");
  std::string dir =
      env != nullptr && *env != 0 ? env : absl::StrFormat("/tmp/unipool-%d", geteuid());
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot create %s: %s", dir, std::strerror(errno)));
  }
  // Someone else may have made it first (it is under /tmp): use it only when
  // it is this user's own folder that nobody else can enter.
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s must be a folder owned by uid %d with mode 0700: refusing to use it", dir, geteuid()));
  }
  return dir;
}

absl::StatusOr<Fd> ListenLocal(const std::string& name) {
  auto addr = PathAddress(name);
  if (!addr.ok()) return addr.status();
  const char* path = addr->sun_path;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Fd listener = Socket(AF_UNIX, SOCK_STREAM, 0);
    if (!listener.valid()) {
      return absl::InternalError(absl::StrFormat("unix socket: %s", std::strerror(errno)));
    }
    if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0) {
      if (listen(listener.get(), 128) != 0) {
        return absl::InternalError(absl::StrFormat("listen %s: %s", path, std::strerror(errno)));
      }
      return listener;
    }
    if (errno != EADDRINUSE) {
      return absl::InternalError(absl::StrFormat("bind %s: %s", path, std::strerror(errno)));
    }
    // A file is there: a live listener answers (and sees one connection
    // that closes at once); a dead one's file is stale.
    Fd probe = Socket(AF_UNIX, SOCK_STREAM, 0);
    if (probe.valid() && Connect(probe.get(), *addr) == 0) {
      return absl::AlreadyExistsError(absl::StrFormat("another process listens on %s", path));
    }
    unlink(path);
  }
  return absl::InternalError(absl::StrFormat("bind %s: the socket file keeps coming back", path));
}

absl::StatusOr<Fd> ConnectLocal(const std::string& name) {
  auto addr = PathAddress(name);
  if (!addr.ok()) return addr.status();
  Fd sock = Socket(AF_UNIX, SOCK_STREAM, 0);
  if (!sock.valid()) {
    return absl::InternalError(absl::StrFormat("unix socket: %s", std::strerror(errno)));
  }
  if (Connect(sock.get(), *addr) != 0) {
    return absl::UnavailableError(
        absl::StrFormat("nobody listens on %s: %s", addr->sun_path, std::strerror(errno)));
  }
  return sock;
}

void RemoveLocal(const std::string& name) {
  if (auto addr = PathAddress(name); addr.ok()) unlink(addr->sun_path);
}

std::string LocalDisplayName(const std::string& name) {
  auto addr = PathAddress(name);
  return addr.ok() ? std::string(addr->sun_path) : name;
}

absl::StatusOr<uid_t> PeerUid(int fd) {
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) != 0) {
    return absl::InternalError(absl::StrFormat("getpeereid: %s", std::strerror(errno)));
  }
  return uid;
#else
  // This build on Linux: glibc has no getpeereid; SO_PEERCRED is the same answer.
  ucred peer{};
  socklen_t length = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    return absl::InternalError(absl::StrFormat("SO_PEERCRED: %s", std::strerror(errno)));
  }
  return peer.uid;
#endif
}

absl::StatusOr<Wakeup> Wakeup::Create() {
  int fds[2];
  if (!Pipe(fds)) return absl::InternalError(absl::StrFormat("pipe: %s", std::strerror(errno)));
  Wakeup wakeup;
  wakeup.read_ = Fd(fds[0]);
  wakeup.write_ = Fd(fds[1]);
  SetNonBlocking(fds[0], true);
  SetNonBlocking(fds[1], true);
  return wakeup;
}

void Wakeup::Signal() {
  char one = 1;
  (void)!write(write_.get(), &one, 1);
}

}  // namespace unipool::platform
