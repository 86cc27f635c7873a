// The parts of the memory layer that are the same in both builds: named POSIX
// shared memory, mappings, page touching, the page size.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "platform_internal.h"
#include "unipool/platform/fd.h"
#include "unipool/platform/memory.h"

namespace unipool {

void Fd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace platform {
namespace {

// macOS's PSHMNAMLEN: 31 bytes, the leading slash included.
constexpr size_t kMaxShmNameBytes = 31;

std::string ShmName(const std::string& name) { return name.starts_with("/") ? name : "/" + name; }

absl::Status ErrnoStatus(absl::StatusCode code, const std::string& what) {
  return absl::Status(code, absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

// Fills in size (and whether it is fixed) for an opened or created object.
absl::StatusOr<SharedMemory> Describe(Fd fd) {
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(absl::StatusCode::kInternal, "fstat");
  SharedMemory memory;
  memory.fd = std::move(fd);
  memory.size = static_cast<uint64_t>(st.st_size);
  memory.size_fixed = ShmSizeIsFixed(memory.fd.get(), memory.size);
  return memory;
}

}  // namespace

uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

absl::Status CheckSharedMemoryName(const std::string& name) {
  std::string shm = ShmName(name);
  if (shm.size() < 2 || shm.size() > kMaxShmNameBytes || shm.find('/', 1) != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "shared-memory name '%s' must be 1-%d characters without '/' (macOS's limit)", name,
        kMaxShmNameBytes - 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<SharedMemory> OpenNamedMemory(const std::string& name) {
  if (absl::Status s = CheckSharedMemoryName(name); !s.ok()) return s;
  std::string shm = ShmName(name);
  Fd fd(shm_open(shm.c_str(), O_RDWR, 0600));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrFormat("no shared memory %s", shm));
    return ErrnoStatus(absl::StatusCode::kFailedPrecondition, "shm_open " + shm);
  }
  SetCloseOnExec(fd.get());
  return Describe(std::move(fd));
}

absl::StatusOr<SharedMemory> CreateNamedMemory(const std::string& name, uint64_t size) {
  if (absl::Status s = CheckSharedMemoryName(name); !s.ok()) return s;
  std::string shm = ShmName(name);
  Fd fd(shm_open(shm.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrFormat("shared memory %s exists", shm));
    }
    return ErrnoStatus(absl::StatusCode::kResourceExhausted, "shm_open " + shm);
  }
  SetCloseOnExec(fd.get());
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    absl::Status failed = ErrnoStatus(absl::StatusCode::kResourceExhausted,
                                      absl::StrFormat("cannot size %s to %u bytes", shm, size));
    shm_unlink(shm.c_str());
    return failed;
  }
  return Describe(std::move(fd));
}

absl::Status UnlinkNamedMemory(const std::string& name) {
  if (absl::Status s = CheckSharedMemoryName(name); !s.ok()) return s;
  std::string shm = ShmName(name);
  if (shm_unlink(shm.c_str()) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrFormat("no shared memory %s", shm));
    return ErrnoStatus(absl::StatusCode::kInternal, "shm_unlink " + shm);
  }
  return absl::OkStatus();
}

namespace {

// OK when [offset, offset + length) of `fd` can be mapped: page aligned,
// and all of it there.
absl::Status CheckMappable(int fd, uint64_t offset, uint64_t length) {
  if (length == 0 || offset % PageSize() != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot map %u bytes at offset %u (page size %u)", length, offset, PageSize()));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(absl::StatusCode::kInternal, "fstat");
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have < offset || have - offset < length) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "shared memory holds %u bytes, fewer than the %u announced at offset %u: refusing to map "
        "it (it was truncated, or the peer is lying)",
        have, length, offset));
  }
  return absl::OkStatus();
}

// mmap of a checked range with `protection` (and `flags` besides MAP_SHARED).
absl::StatusOr<uint8_t*> MapChecked(int fd, uint64_t offset, uint64_t length, int protection,
                                    int flags = 0) {
  if (absl::Status s = CheckMappable(fd, offset, length); !s.ok()) return s;
  void* p = mmap(nullptr, length, protection, MAP_SHARED | flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    return ErrnoStatus(absl::StatusCode::kResourceExhausted,
                       absl::StrFormat("cannot map %u bytes of shared memory", length));
  }
  return static_cast<uint8_t*>(p);
}

}  // namespace

absl::StatusOr<uint8_t*> MapShared(int fd, uint64_t offset, uint64_t length) {
  return MapChecked(fd, offset, length, PROT_READ | PROT_WRITE);
}

absl::StatusOr<const uint8_t*> MapSharedReadOnly(int fd, uint64_t offset, uint64_t length) {
  // Populated: a view is read whole at once (its checksum), and one mmap
  // that maps every page costs less than a fault per page.
  auto map = MapChecked(fd, offset, length, PROT_READ, PopulateMapFlag());
  if (!map.ok()) return map.status();
  return *map;
}

absl::Status KeepPrivateCopy(const uint8_t* address, uint64_t length) {
  void* copy = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
  if (copy == MAP_FAILED) {
    return ErrnoStatus(absl::StatusCode::kResourceExhausted,
                       absl::StrFormat("cannot map %u bytes of memory", length));
  }
  std::memcpy(copy, address, length);
  mprotect(copy, length, PROT_READ);
  if (!MovePages(copy, const_cast<uint8_t*>(address), length)) {
    absl::Status s = ErrnoStatus(absl::StatusCode::kInternal, "moving a private copy in");
    munmap(copy, length);
    return s;
  }
  return absl::OkStatus();
}

void Unmap(void* address, uint64_t length) {
  if (address != nullptr) munmap(address, length);
}

absl::StatusOr<AnonymousPages> AnonymousPages::Allocate(uint64_t size) {
  size = RoundUp(size, PageSize());
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
  if (p == MAP_FAILED) {
    return ErrnoStatus(absl::StatusCode::kResourceExhausted,
                       absl::StrFormat("cannot map %u bytes of memory", size));
  }
  AnonymousPages pages;
  pages.data_ = static_cast<uint8_t*>(p);
  pages.size_ = size;
  return pages;
}

AnonymousPages& AnonymousPages::operator=(AnonymousPages&& other) noexcept {
  if (this != &other) {
    Unmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void TouchPages(uint8_t* address, uint64_t length) {
  const uint64_t page = PageSize();
  for (uint64_t at = 0; at < length; at += page) {
    // A write fault without changing the byte (nobody else writes meanwhile).
    volatile uint8_t* byte = address + at;
    *byte = *byte;
  }
}

void ReadPages(const uint8_t* address, uint64_t length) {
  const uint64_t page = PageSize();
  for (uint64_t at = 0; at < length; at += page) {
    (void)*reinterpret_cast<const volatile uint8_t*>(address + at);  // volatile: the load stays
  }
}

void PrefaultForWriting(uint8_t* address, uint64_t length) {
  if (length == 0) return;
  const uint64_t page = PageSize();
  uintptr_t start = reinterpret_cast<uintptr_t>(address) / page * page;
  uintptr_t end = RoundUp(reinterpret_cast<uintptr_t>(address) + length, page);
  PopulatePagesShared(reinterpret_cast<uint8_t*>(start), end - start);
}

absl::Duration Prefault(uint8_t* address, uint64_t length, int threads) {
  absl::Time start = absl::Now();
  constexpr uint64_t kParallelFrom = 1ull << 30;
  int n = length >= kParallelFrom ? std::max(threads, 1) : 1;
  uint64_t chunk = RoundUp((length + n - 1) / n, PageSize());
  std::vector<std::thread> workers;
  for (uint64_t at = chunk; at < length; at += chunk) {
    workers.emplace_back([=] { PopulatePages(address + at, std::min(chunk, length - at)); });
  }
  PopulatePages(address, std::min(chunk, length));
  for (std::thread& t : workers) t.join();
  return absl::Now() - start;
}

}  // namespace platform
}  // namespace unipool
