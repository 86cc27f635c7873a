// file_io.h on macOS (and the POSIX build on Linux): pread and pwritev, with
// F_NOCACHE where the system has it, so flash pages do not crowd the unified
// memory's cache.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "file_io_internal.h"
#include "unipool/platform/file_io.h"

namespace unipool::platform {

std::string_view FileIoEngine() { return "pread"; }

int64_t ReadOnce(int fd, uint64_t offset, uint8_t* data, size_t length) {
  ssize_t n = ::pread(fd, data, length, static_cast<off_t>(offset));
  return n < 0 ? -errno : n;
}

int64_t WriteOnce(int fd, uint64_t offset, const iovec* pieces, int count) {
  ssize_t n = ::pwritev(fd, pieces, count, static_cast<off_t>(offset));
  return n < 0 ? -errno : n;
}

// One after another: the shared loop (ReadMany) does each with ReadAt.
void ReadBatch(std::span<ReadRequest> requests) {
  for (ReadRequest& r : requests) r.result = absl::AbortedError("not read yet");
}

bool PrepareDataFile(int fd) {
#ifdef F_NOCACHE
  return ::fcntl(fd, F_NOCACHE, 1) == 0;
#else
  return true;
#endif
}

absl::Status SyncData(int fd) {
  if (::fsync(fd) != 0)
    return absl::UnavailableError(std::string("fsync: ") + std::strerror(errno));
  return absl::OkStatus();
}

void DropCachedPages(int fd) {
#ifndef F_NOCACHE
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
#endif
}

}  // namespace unipool::platform
