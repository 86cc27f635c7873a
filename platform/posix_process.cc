// Processes, POSIX/macOS build: _NSGetExecutablePath, and a watcher process
// instead of prctl(PR_SET_PDEATHSIG).
//
// The parent holds the write end of one pipe for its whole life (close-on-
// exec, so no exec'd program keeps it). For each child, a small watcher
// process (the child's grandchild, reparented at once so nobody has to reap
// it) holds the read end and one end of a second pipe whose other end the
// child keeps across exec. The watcher blocks in poll: when the parent's
// pipe hangs up (the parent is gone, however it died) it kills the child
// with SIGKILL; when the child's pipe hangs up (the child is gone) it exits.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/strings/str_format.h"
#include "unipool/platform/net.h"
#include "unipool/platform/process.h"

namespace unipool::platform {
namespace {

// Runs in the watcher: only async-signal-safe calls.
[[noreturn]] void Watch(int parent_fd, int child_fd, pid_t child) {
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
  for (int fd = 0; fd < max_fd; ++fd) {
    if (fd != parent_fd && fd != child_fd) close(fd);  // hold nothing of the child's
  }
  while (true) {
    pollfd fds[2] = {{child_fd, POLLIN, 0}, {parent_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno == EINTR) continue;
    if (fds[0].revents != 0) _exit(0);  // the child is gone
    if (fds[1].revents != 0) {
      kill(child, SIGKILL);
      _exit(0);
    }
  }
}

}  // namespace

absl::StatusOr<std::string> ExecutablePath() {
#if defined(__APPLE__)
  char path[PATH_MAX];
  uint32_t size = sizeof path;
  if (_NSGetExecutablePath(path, &size) != 0) {
    return absl::InternalError("_NSGetExecutablePath: the path is longer than PATH_MAX");
  }
  char resolved[PATH_MAX];
  if (realpath(path, resolved) == nullptr) return std::string(path);
  return std::string(resolved);
#else
  // This build on Linux: the kernel's link is the only source of the path.
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) {
    return absl::InternalError(
        absl::StrFormat("readlink /proc/self/exe: %s", std::strerror(errno)));
  }
  return std::string(path, static_cast<size_t>(n));
#endif
}

absl::StatusOr<ParentWatch> PrepareParentWatch() {
  static int fds[2] = {-1, -1};
  static int error = 0;
  static std::once_flag once;
  std::call_once(once, [] {
    if (!Pipe(fds)) error = errno;
  });
  if (error != 0) {
    return absl::InternalError(absl::StrFormat("parent-death pipe: %s", std::strerror(error)));
  }
  ParentWatch watch;
  watch.parent = getpid();
  watch.read_fd = fds[0];
  watch.write_fd = fds[1];
  return watch;
}

void DieWithParent(const ParentWatch& watch) {
  close(watch.write_fd);  // only the parent may hold it
  if (getppid() != watch.parent) _exit(1);
  int child_pipe[2];
  if (pipe(child_pipe) != 0) _exit(1);
  pid_t child = getpid();
  pid_t middle = fork();
  if (middle < 0) _exit(1);
  if (middle == 0) {
    // The middle process exits at once, so the watcher is reparented (to
    // init or a subreaper) and reaped there, not by the child's program.
    if (fork() == 0) Watch(watch.read_fd, child_pipe[0], child);
    _exit(0);
  }
  while (waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {
  }
  close(child_pipe[0]);
  // child_pipe[1] stays open across exec: its hang-up tells the watcher the
  // child has ended. The parent's pipe read end closes at exec.
}

}  // namespace unipool::platform
