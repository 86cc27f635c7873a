#include "store/slab.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "common/units.h"

namespace unipool {
namespace {

constexpr uint64_t kHugePageBytes = 2ull << 20;

uint64_t RoundUp(uint64_t value, uint64_t unit) { return (value + unit - 1) / unit * unit; }

uint64_t RandomId() {
  std::random_device device;
  uint64_t id = (static_cast<uint64_t>(device()) << 32) ^ device();
  return id == 0 ? 1 : id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Slab>> Slab::Create(uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("slab size must be positive");
  // Explicit huge pages only exist when the administrator reserved them
  // (vm.nr_hugepages); the memfd then fails at ftruncate/mmap otherwise.
  uint64_t huge_size = RoundUp(size, kHugePageBytes);
  Fd fd(memfd_create("unipool-slab", MFD_CLOEXEC | MFD_HUGETLB));
  if (fd.valid() && ftruncate(fd.get(), static_cast<off_t>(huge_size)) == 0) {
    void* p = mmap(nullptr, huge_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   fd.get(), 0);
    if (p != MAP_FAILED) {
      return std::unique_ptr<Slab>(
          new Slab(std::move(fd), static_cast<uint8_t*>(p), huge_size, true, RandomId()));
    }
  }
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t normal_size = RoundUp(size, page);
  fd = Fd(memfd_create("unipool-slab", MFD_CLOEXEC));
  if (!fd.valid()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("memfd_create for the slab failed: %s", std::strerror(errno)));
  }
  if (ftruncate(fd.get(), static_cast<off_t>(normal_size)) != 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot size the slab to %s: %s", FormatSize(normal_size), std::strerror(errno)));
  }
  void* p = mmap(nullptr, normal_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot map a slab of %s: %s", FormatSize(normal_size), std::strerror(errno)));
  }
  madvise(p, normal_size, MADV_HUGEPAGE);  // best effort (shmem THP)
  return std::unique_ptr<Slab>(
      new Slab(std::move(fd), static_cast<uint8_t*>(p), normal_size, false, RandomId()));
}

Slab::~Slab() { munmap(data_, size_); }

absl::StatusOr<std::span<uint8_t>> Slab::Range(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "range [%u, +%u) is outside the slab of %u bytes", offset, length, size_));
  }
  return std::span<uint8_t>(data_ + offset, length);
}

}  // namespace unipool
