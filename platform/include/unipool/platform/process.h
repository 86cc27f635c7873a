// Processes: this program's own path, and children that die with it.
//
// Linux: /proc/self/exe and prctl(PR_SET_PDEATHSIG). POSIX/macOS:
// _NSGetExecutablePath (macOS), and a watcher process per child that kills
// the child when this process's end of a pipe closes (there is no
// PR_SET_PDEATHSIG).
#ifndef UNIPOOL_PLATFORM_PROCESS_H_
#define UNIPOOL_PLATFORM_PROCESS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace unipool::platform {

// The absolute path of the running executable.
absl::StatusOr<std::string> ExecutablePath();

// Children that die with their parent, however the parent ends (SIGKILL
// included). Call PrepareParentWatch() in the parent before fork(), and
// DieWithParent(watch) in the child after fork() and before exec().
struct ParentWatch {
  pid_t parent = 0;
  int read_fd = -1;   // POSIX: this process's watch pipe (kept open for its life)
  int write_fd = -1;  // POSIX: the parent's end, closed in the child
};
// Thread-safe. Internal when the pipe cannot be made.
absl::StatusOr<ParentWatch> PrepareParentWatch();
// In the child between fork and exec (async-signal-safe calls only): the
// child is killed with SIGKILL when the parent exits; _exit(1) at once when
// the parent is already gone.
void DieWithParent(const ParentWatch& watch);

}  // namespace unipool::platform

#endif  // UNIPOOL_PLATFORM_PROCESS_H_
