// Processes, Linux build: /proc/self/exe and prctl(PR_SET_PDEATHSIG).
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/platform/process.h"

namespace unipool::platform {

absl::StatusOr<std::string> ExecutablePath() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) {
    return absl::InternalError(
        absl::StrFormat("readlink /proc/self/exe: %s", std::strerror(errno)));
  }
  return std::string(path, static_cast<size_t>(n));
}

absl::StatusOr<ParentWatch> PrepareParentWatch() {
  ParentWatch watch;
  watch.parent = getpid();
  return watch;
}

void DieWithParent(const ParentWatch& watch) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before prctl: then nobody sends the signal.
  if (getppid() != watch.parent) _exit(1);
}

}  // namespace unipool::platform
