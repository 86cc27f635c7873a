// File I/O at offsets, for the node's flash tier: large segment files that
// are appended to and read one page at a time.
//
// Linux (UNIPOOL_PLATFORM=linux): io_uring (Debian's liburing), one small
// ring per calling thread, created on its first call; where the kernel or a
// sandbox refuses io_uring, pread/pwritev instead (said once in the log of
// whoever asks FileIoEngine()).
// POSIX/macOS (UNIPOOL_PLATFORM=posix): pread/pwritev; files opened with
// F_NOCACHE where the system has it (macOS), so a tier of terabytes does not
// push the slab's memory out of the unified memory's cache.
//
// Thread safety: every function is thread-safe; calls on one fd may run at
// once on different ranges.
#ifndef UNIPOOL_PLATFORM_FILE_IO_H_
#define UNIPOOL_PLATFORM_FILE_IO_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "unipool/platform/fd.h"

namespace unipool::platform {

// "io_uring" or "pread": what ReadAt and WriteAt use on this machine.
std::string_view FileIoEngine();

// Opens `path` for reading and writing, creating it (0600) when `create`.
// NotFound when it does not exist and !create; Unavailable otherwise.
absl::StatusOr<Fd> OpenDataFile(const std::string& path, bool create);

// Reads up to bytes.size() bytes at `offset`; returns how many were read,
// fewer only at the end of the file. Unavailable on an I/O error (EIO).
absl::StatusOr<size_t> ReadAt(int fd, uint64_t offset, std::span<uint8_t> bytes);

// One read of a batch: `bytes.size()` bytes of `fd` at `offset`.
struct ReadRequest {
  int fd = -1;
  uint64_t offset = 0;
  std::span<uint8_t> bytes;
  absl::StatusOr<size_t> result = size_t{0};  // set by ReadMany, as ReadAt answers
};

// Reads every request, with up to kReadManyDepth in flight at once on Linux
// (io_uring; one after another with pread elsewhere), so that many pages of
// one disk are read in the time of a few. Each result is as ReadAt's.
inline constexpr int kReadManyDepth = 32;
void ReadMany(std::span<ReadRequest> requests);

// Writes every byte of `pieces`, one after the other, from `offset`.
// ResourceExhausted when the disk, a quota or the file size limit is full
// (ENOSPC, EDQUOT, EFBIG); Unavailable on other errors. Part of the bytes
// may have been written when it fails.
absl::Status WriteAt(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> pieces);

// Makes the file's written bytes durable (fdatasync; fsync on macOS, which
// reaches the drive's cache but not its media: F_FULLFSYNC is not used).
absl::Status SyncData(int fd);

// Sets the file's size (cuts a torn tail, or a failed write's part).
absl::Status Truncate(int fd, uint64_t size);

// The file's size in bytes.
absl::StatusOr<uint64_t> FileSize(int fd);

// Asks the kernel to drop the file's cached pages (Linux
// POSIX_FADV_DONTNEED; nothing with F_NOCACHE), so that a benchmark reads
// from the disk. Best effort; written pages must be synced first.
void DropCachedPages(int fd);

}  // namespace unipool::platform

#endif  // UNIPOOL_PLATFORM_FILE_IO_H_
