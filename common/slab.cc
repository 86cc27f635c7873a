#include "unipool/common/slab.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "unipool/common/units.h"

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
    void* p =
        mmap(nullptr, huge_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
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

namespace {

// A shared slab's first page: what lets a restarted process recognise it.
struct SharedSlabHeader {
  char magic[8];  // "UPSLAB01"
  uint64_t id;
  uint64_t size;  // data bytes after the header page
};
constexpr char kSharedSlabMagic[8] = {'U', 'P', 'S', 'L', 'A', 'B', '0', '1'};
constexpr uint64_t kSharedHeaderBytes = 4096;
static_assert(sizeof(SharedSlabHeader) <= kSharedHeaderBytes);

std::string ShmName(const std::string& name) { return name.starts_with("/") ? name : "/" + name; }

}  // namespace

absl::StatusOr<std::unique_ptr<Slab>> Slab::OpenShared(const std::string& name, uint64_t size,
                                                       bool* reused) {
  *reused = false;
  if (size == 0) return absl::InvalidArgumentError("slab size must be positive");
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t data_size = RoundUp(size, page);
  uint64_t total = kSharedHeaderBytes + data_size;
  std::string shm = ShmName(name);
  Fd fd(shm_open(shm.c_str(), O_RDWR | O_CLOEXEC, 0600));
  if (fd.valid()) {
    struct stat st;
    SharedSlabHeader header{};
    if (fstat(fd.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) == total &&
        pread(fd.get(), &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header) &&
        std::memcmp(header.magic, kSharedSlabMagic, sizeof header.magic) == 0 &&
        header.size == data_size && header.id != 0) {
      void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
      if (p == MAP_FAILED) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "cannot map shared slab %s of %s: %s", shm, FormatSize(total), std::strerror(errno)));
      }
      madvise(p, total, MADV_HUGEPAGE);
      *reused = true;
      return std::unique_ptr<Slab>(new Slab(std::move(fd),
                                            static_cast<uint8_t*>(p) + kSharedHeaderBytes,
                                            data_size, false, header.id, kSharedHeaderBytes));
    }
    // Another size or not a slab: start over.
    fd = Fd();
    shm_unlink(shm.c_str());
  }
  fd = Fd(shm_open(shm.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("shm_open %s for the slab failed: %s", shm, std::strerror(errno)));
  }
  if (ftruncate(fd.get(), static_cast<off_t>(total)) != 0) {
    shm_unlink(shm.c_str());
    return absl::ResourceExhaustedError(absl::StrFormat("cannot size shared slab %s to %s: %s", shm,
                                                        FormatSize(total), std::strerror(errno)));
  }
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    shm_unlink(shm.c_str());
    return absl::ResourceExhaustedError(absl::StrFormat("cannot map shared slab %s of %s: %s", shm,
                                                        FormatSize(total), std::strerror(errno)));
  }
  madvise(p, total, MADV_HUGEPAGE);
  SharedSlabHeader header{};
  std::memcpy(header.magic, kSharedSlabMagic, sizeof header.magic);
  header.id = RandomId();
  header.size = data_size;
  std::memcpy(p, &header, sizeof header);
  return std::unique_ptr<Slab>(new Slab(std::move(fd),
                                        static_cast<uint8_t*>(p) + kSharedHeaderBytes, data_size,
                                        false, header.id, kSharedHeaderBytes));
}

absl::Status Slab::UnlinkShared(const std::string& name) {
  std::string shm = ShmName(name);
  if (shm_unlink(shm.c_str()) != 0) {
    return errno == ENOENT ? absl::NotFoundError(absl::StrFormat("no shared slab %s", shm))
                           : absl::InternalError(
                                 absl::StrFormat("shm_unlink %s: %s", shm, std::strerror(errno)));
  }
  return absl::OkStatus();
}

Slab::~Slab() { munmap(data_ - header_bytes_, size_ + header_bytes_); }

absl::StatusOr<std::span<uint8_t>> Slab::Range(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::OutOfRangeError(
        absl::StrFormat("range [%u, +%u) is outside the slab of %u bytes", offset, length, size_));
  }
  return std::span<uint8_t>(data_ + offset, length);
}

}  // namespace unipool
