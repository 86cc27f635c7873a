// Memory, Linux build: memfd (MFD_HUGETLB when huge pages are reserved),
// sealed against shrinking and growing; MADV_HUGEPAGE; MADV_POPULATE_WRITE.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "platform_internal.h"
#include "unipool/platform/memory.h"

namespace unipool::platform {
namespace {

constexpr uint64_t kHugePageBytes = 2ull << 20;
constexpr int kSizeSeals = F_SEAL_SHRINK | F_SEAL_GROW;

// A sealed memfd of `size` bytes; with huge pages, only when the system can
// actually back a mapping of it (explicit huge pages exist only when the
// administrator reserved them with vm.nr_hugepages).
absl::StatusOr<SharedMemory> Memfd(uint64_t size, bool huge) {
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB : 0u);
  Fd fd(memfd_create("unipool-slab", flags));
  if (!fd.valid()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("memfd_create for the slab failed: %s", std::strerror(errno)));
  }
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot size the slab to %u bytes: %s", size, std::strerror(errno)));
  }
  if (huge) {
    // A shared hugetlb mapping reserves its pages for the file: fails here,
    // not with SIGBUS later, when there are not enough.
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return absl::ResourceExhaustedError("not enough huge pages reserved");
    munmap(p, size);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, kSizeSeals) != 0) {
    return absl::InternalError(
        absl::StrFormat("cannot seal the slab's size: %s", std::strerror(errno)));
  }
  SharedMemory memory;
  memory.fd = std::move(fd);
  memory.size = size;
  memory.huge_pages = huge;
  memory.size_fixed = true;
  return memory;
}

}  // namespace

std::string_view Name() { return "linux"; }

absl::StatusOr<SharedMemory> CreateSharedMemory(uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("shared memory size must be positive");
  auto huge = Memfd(RoundUp(size, kHugePageBytes), /*huge=*/true);
  if (huge.ok()) return huge;
  return Memfd(RoundUp(size, PageSize()), /*huge=*/false);
}

bool ShmSizeIsFixed(int fd, uint64_t) {
  int seals = fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & kSizeSeals) == kSizeSeals;
}

void AdviseHugePages(void* address, uint64_t length) {
  madvise(address, length, MADV_HUGEPAGE);  // best effort (shmem THP)
}

std::string SharedHugePagesMode() {
  // One line, the current choice in brackets: "always ... [never] deny force".
  std::ifstream file("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string line;
  if (!std::getline(file, line)) return "";
  size_t open = line.find('[');
  size_t close = line.find(']', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return line.substr(open + 1, close - open - 1);
}

bool MovePages(void* from, void* to, uint64_t length) {
  // One step: a reader of `to` sees the old pages or the copy, never a gap.
  return mremap(from, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED;
}

void PopulatePages(uint8_t* address, uint64_t length) {
  // Linux 5.14+; older kernels say EINVAL and get the portable loop.
  if (madvise(address, length, MADV_POPULATE_WRITE) == 0) return;
  TouchPages(address, length);
}

int PopulateMapFlag() { return MAP_POPULATE; }

void PopulatePagesShared(uint8_t* address, uint64_t length) {
  // Maps without storing, so writers of the range lose nothing.
  if (madvise(address, length, MADV_POPULATE_WRITE) == 0) return;
  ReadPages(address, length);
}

}  // namespace unipool::platform
