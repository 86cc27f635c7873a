// Sockets, the flags that differ between Linux and macOS, and same-host
// (Unix) sockets with their peer's identity and fd passing.
//
// Linux: SOCK_CLOEXEC / SOCK_NONBLOCK at creation, accept4, MSG_NOSIGNAL,
// sockets in the abstract namespace (no file), SO_PEERCRED, eventfd.
// POSIX/macOS: socket() then fcntl, accept() then fcntl, SO_NOSIGPIPE
// (MSG_NOSIGNAL where SO_NOSIGPIPE does not exist, i.e. this build on
// Linux), same-host sockets as files in a per-user 0700 folder (macOS has no
// abstract namespace), getpeereid (SO_PEERCRED on Linux), a pipe.
//
// Thread safety: every function is thread-safe.
#ifndef UNIPOOL_PLATFORM_NET_H_
#define UNIPOOL_PLATFORM_NET_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "unipool/platform/fd.h"

namespace unipool::platform {

// socket(domain, type, protocol), close-on-exec, non-blocking when asked,
// and never raising SIGPIPE where the system has a per-socket switch.
// Returns an invalid Fd with errno set on failure.
Fd Socket(int domain, int type, int protocol, bool non_blocking = false);

// accept(), the new socket close-on-exec (and without SIGPIPE as above).
// Returns an invalid Fd with errno set on failure.
Fd Accept(int listener, sockaddr* address, socklen_t* length);

// Flags for every send/sendmsg on a socket: MSG_NOSIGNAL where the system
// has no per-socket switch, else 0. A dead peer is then an EPIPE error,
// never a signal.
int SendFlags();

// Sets or clears O_NONBLOCK. False (errno set) on failure.
bool SetNonBlocking(int fd, bool non_blocking);

// A close-on-exec pipe. False (errno set) on failure.
bool Pipe(int fds[2]);

// A pty pair of `rows` x `cols` (tests of terminal output). False on failure.
bool OpenPty(int* master, int* slave, int rows, int cols);

// Same-host sockets named `name` (e.g. "unipool-shm/127.0.0.1:7301"). Linux:
// the abstract name `name`. POSIX: a socket file in RuntimeDir(), its name
// derived from `name` (short enough for macOS's 104-byte sun_path).
//
// ListenLocal: AlreadyExists when a live process listens on `name`; a stale
// socket file left by a process that died is replaced.
absl::StatusOr<Fd> ListenLocal(const std::string& name);
// Unavailable when nobody listens on `name` (or this user may not reach it).
absl::StatusOr<Fd> ConnectLocal(const std::string& name);
// Removes the socket file of `name` (POSIX); nothing on Linux. Call when the
// listener closes.
void RemoveLocal(const std::string& name);
// Where a same-host socket named `name` lives, for messages: "@name" or a path.
std::string LocalDisplayName(const std::string& name);
// POSIX: the per-user folder of same-host sockets: $UNIPOOL_RUNTIME_DIR, else
// /tmp/unipool-UID; created 0700; FailedPrecondition when it exists but is
// not a folder of this user that only this user can enter.
absl::StatusOr<std::string> RuntimeDir();

// The user on the other end of a connected Unix socket.
absl::StatusOr<uid_t> PeerUid(int fd);

// Sends `size` bytes with `fd_to_pass` attached (SCM_RIGHTS); -1 sends none.
// Returns what sendmsg returned (errno set when < 0).
ssize_t SendWithFd(int socket, const void* data, size_t size, int fd_to_pass);
// Receives up to `size` bytes (waiting for all of them) and the fd attached,
// if any, close-on-exec in *received. Returns what recvmsg returned.
ssize_t ReceiveWithFd(int socket, void* data, size_t size, Fd* received);

// A pollable fd that becomes readable once Signal() is called: wakes a
// thread blocked in poll() (Linux: an eventfd; POSIX: a pipe).
class Wakeup {
 public:
  static absl::StatusOr<Wakeup> Create();
  int fd() const { return read_.get(); }
  void Signal();

 private:
  Fd read_;
  Fd write_;  // invalid with an eventfd (read_ is both ends)
};

}  // namespace unipool::platform

#endif  // UNIPOOL_PLATFORM_NET_H_
