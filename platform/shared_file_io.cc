// The parts of file_io.h both builds share: opening, and the loops that
// finish short reads and writes and retry interrupted ones.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "file_io_internal.h"
#include "unipool/platform/file_io.h"

namespace unipool::platform {
namespace {

// Files, quotas and RLIMIT_FSIZE that are full are one kind of failure: the
// caller drops the write and goes on.
absl::Status WriteError(int error) {
  std::string text = absl::StrFormat("write: %s", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT || error == EFBIG) {
    return absl::ResourceExhaustedError(text);
  }
  return absl::UnavailableError(text);
}

// Drops the first `done` bytes of `pieces`.
void Advance(std::vector<iovec>& pieces, size_t& first, uint64_t done) {
  while (done > 0 && first < pieces.size()) {
    uint64_t take = std::min<uint64_t>(done, pieces[first].iov_len);
    pieces[first].iov_base = static_cast<uint8_t*>(pieces[first].iov_base) + take;
    pieces[first].iov_len -= take;
    done -= take;
    if (pieces[first].iov_len == 0) ++first;
  }
}

}  // namespace

absl::StatusOr<Fd> OpenDataFile(const std::string& path, bool create) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  Fd fd(::open(path.c_str(), flags, 0600));
  if (!fd.valid()) {
    std::string text = absl::StrFormat("open %s: %s", path, std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(text) : absl::UnavailableError(text);
  }
  if (!PrepareDataFile(fd.get())) {
    return absl::UnavailableError(absl::StrFormat("prepare %s: %s", path, std::strerror(errno)));
  }
  return fd;
}

absl::StatusOr<size_t> ReadAt(int fd, uint64_t offset, std::span<uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    int64_t n = ReadOnce(fd, offset + done, bytes.data() + done, bytes.size() - done);
    if (n == -EINTR || n == -EAGAIN) continue;
    if (n < 0) {
      return absl::UnavailableError(
          absl::StrFormat("read: %s", std::strerror(static_cast<int>(-n))));
    }
    if (n == 0) break;  // the end of the file
    done += static_cast<size_t>(n);
  }
  return done;
}

void ReadMany(std::span<ReadRequest> requests) {
  ReadBatch(requests);
  // A short read in a batch (or one the batch could not do) is finished here.
  for (ReadRequest& r : requests) {
    if (r.result.ok() && *r.result == r.bytes.size()) continue;
    if (!r.result.ok() && !absl::IsAborted(r.result.status())) continue;
    size_t done = r.result.ok() ? *r.result : 0;
    absl::StatusOr<size_t> rest = ReadAt(r.fd, r.offset + done, r.bytes.subspan(done));
    r.result = rest.ok() ? absl::StatusOr<size_t>(done + *rest) : rest;
  }
}

absl::Status WriteAt(int fd, uint64_t offset, std::span<const std::span<const uint8_t>> pieces) {
  std::vector<iovec> left;
  uint64_t total = 0;
  for (std::span<const uint8_t> piece : pieces) {
    if (piece.empty()) continue;
    left.push_back(iovec{const_cast<uint8_t*>(piece.data()), piece.size()});
    total += piece.size();
  }
  size_t first = 0;
  uint64_t done = 0;
  while (done < total) {
    int count = static_cast<int>(std::min<size_t>(left.size() - first, IOV_MAX));
    int64_t n = WriteOnce(fd, offset + done, left.data() + first, count);
    if (n == -EINTR || n == -EAGAIN) continue;
    if (n < 0) return WriteError(static_cast<int>(-n));
    if (n == 0) return WriteError(ENOSPC);  // no progress: nothing more will fit
    done += static_cast<uint64_t>(n);
    Advance(left, first, static_cast<uint64_t>(n));
  }
  return absl::OkStatus();
}

absl::Status Truncate(int fd, uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return absl::UnavailableError(absl::StrFormat("ftruncate: %s", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FileSize(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::UnavailableError(absl::StrFormat("fstat: %s", std::strerror(errno)));
  }
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace unipool::platform
