// file_io.h on Linux: each call is one io_uring operation on a small ring of
// the calling thread's own, so threads never share a ring or a lock. Where
// io_uring_setup is refused (old kernels, seccomp sandboxes such as some
// containers'), pread/pwritev do the same work.
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "file_io_internal.h"
#include "unipool/platform/file_io.h"

namespace unipool::platform {
namespace {

// A batch of reads in flight per thread (ReadMany), one operation otherwise.
constexpr unsigned kRingEntries = kReadManyDepth;

class ThreadRing {
 public:
  ThreadRing() { ok_ = io_uring_queue_init(kRingEntries, &ring_, 0) == 0; }
  ~ThreadRing() {
    if (ok_) io_uring_queue_exit(&ring_);
  }
  ThreadRing(const ThreadRing&) = delete;
  ThreadRing& operator=(const ThreadRing&) = delete;
  io_uring* get() { return ok_ ? &ring_ : nullptr; }

 private:
  io_uring ring_;
  bool ok_ = false;
};

io_uring* MyRing() {
  thread_local ThreadRing ring;
  return ring.get();
}

// Whether this machine lets a process set up io_uring (asked once).
const std::string& Engine() {
  static const std::string engine = [] {
    io_uring probe;
    int error = io_uring_queue_init(kRingEntries, &probe, 0);
    if (error != 0) return "pread (io_uring refused: " + std::string(std::strerror(-error)) + ")";
    io_uring_queue_exit(&probe);
    return std::string("io_uring");
  }();
  return engine;
}

// Submits the prepared entry and waits for its completion: its result, or
// -errno when the ring itself failed (the caller then uses the plain call).
int64_t Complete(io_uring* ring) {
  int submitted = io_uring_submit(ring);
  if (submitted != 1) return submitted < 0 ? submitted : -EAGAIN;
  io_uring_cqe* cqe = nullptr;
  int error;
  do {
    error = io_uring_wait_cqe(ring, &cqe);
  } while (error == -EINTR);
  if (error != 0) return error;
  int64_t result = cqe->res;
  io_uring_cqe_seen(ring, cqe);
  return result;
}

}  // namespace

std::string_view FileIoEngine() { return Engine(); }

int64_t ReadOnce(int fd, uint64_t offset, uint8_t* data, size_t length) {
  io_uring* ring = MyRing();
  io_uring_sqe* sqe = ring != nullptr ? io_uring_get_sqe(ring) : nullptr;
  if (sqe == nullptr) {
    ssize_t n = ::pread(fd, data, length, static_cast<off_t>(offset));
    return n < 0 ? -errno : n;
  }
  io_uring_prep_read(sqe, fd, data, static_cast<unsigned>(std::min<size_t>(length, 1u << 30)),
                     offset);
  return Complete(ring);
}

int64_t WriteOnce(int fd, uint64_t offset, const iovec* pieces, int count) {
  io_uring* ring = MyRing();
  io_uring_sqe* sqe = ring != nullptr ? io_uring_get_sqe(ring) : nullptr;
  if (sqe == nullptr) {
    ssize_t n = ::pwritev(fd, pieces, count, static_cast<off_t>(offset));
    return n < 0 ? -errno : n;
  }
  io_uring_prep_writev(sqe, fd, pieces, static_cast<unsigned>(count), offset);
  return Complete(ring);
}

// Keeps up to kRingEntries reads in flight, each request's user_data its
// index; a request that does not complete whole is left to the shared loop
// (Aborted: not read yet, or a short count).
void ReadBatch(std::span<ReadRequest> requests) {
  for (ReadRequest& r : requests) r.result = absl::AbortedError("not read yet");
  io_uring* ring = MyRing();
  if (ring == nullptr) return;
  size_t next = 0, in_flight = 0;
  while (next < requests.size() || in_flight > 0) {
    while (next < requests.size() && in_flight < kRingEntries) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (sqe == nullptr) break;
      ReadRequest& r = requests[next];
      io_uring_prep_read(sqe, r.fd, r.bytes.data(),
                         static_cast<unsigned>(std::min<size_t>(r.bytes.size(), 1u << 30)),
                         r.offset);
      io_uring_sqe_set_data64(sqe, next);
      ++next;
      ++in_flight;
    }
    if (io_uring_submit(ring) < 0 && in_flight == 0) return;
    io_uring_cqe* cqe = nullptr;
    int error = io_uring_wait_cqe(ring, &cqe);
    if (error == -EINTR) continue;
    if (error != 0) return;  // the rest stay Aborted, read by the shared loop
    ReadRequest& r = requests[io_uring_cqe_get_data64(cqe)];
    if (cqe->res >= 0) {
      r.result = static_cast<size_t>(cqe->res);
    } else if (cqe->res != -EINTR && cqe->res != -EAGAIN) {
      r.result = absl::UnavailableError(std::string("read: ") + std::strerror(-cqe->res));
    }
    io_uring_cqe_seen(ring, cqe);
    --in_flight;
  }
}

bool PrepareDataFile(int fd) { return true; }

absl::Status SyncData(int fd) {
  if (::fdatasync(fd) != 0) {
    return absl::UnavailableError(std::string("fdatasync: ") + std::strerror(errno));
  }
  return absl::OkStatus();
}

void DropCachedPages(int fd) { ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); }

}  // namespace unipool::platform
