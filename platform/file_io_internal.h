// The one call per build under file_io.h: linux_file_io.cc (io_uring) or
// posix_file_io.cc (pread/pwritev); the loops around them are shared
// (shared_file_io.cc).
#ifndef UNIPOOL_PLATFORM_FILE_IO_INTERNAL_H_
#define UNIPOOL_PLATFORM_FILE_IO_INTERNAL_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace unipool::platform {

struct ReadRequest;

// One read of up to `length` bytes at `offset`, as pread answers: the bytes
// read (0 at the end of the file) or -errno.
int64_t ReadOnce(int fd, uint64_t offset, uint8_t* data, size_t length);

// One vectored write at `offset`, as pwritev answers: bytes written or -errno.
int64_t WriteOnce(int fd, uint64_t offset, const iovec* pieces, int count);

// Reads a batch, several in flight where the system allows (ReadMany).
// Requests it cannot finish are left with result == nullopt-like
// Unavailable("again") for the shared loop to finish with ReadAt.
void ReadBatch(std::span<struct ReadRequest> requests);

// What a data file needs once opened (macOS: F_NOCACHE). False (errno set)
// on failure.
bool PrepareDataFile(int fd);

}  // namespace unipool::platform

#endif  // UNIPOOL_PLATFORM_FILE_IO_INTERNAL_H_
