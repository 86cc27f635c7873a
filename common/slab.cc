#include "unipool/common/slab.h"

#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "unipool/common/units.h"
#include "unipool/platform/memory.h"

namespace unipool {
namespace {

uint64_t RandomId() {
  std::random_device device;
  uint64_t id = (static_cast<uint64_t>(device()) << 32) ^ device();
  return id == 0 ? 1 : id;
}

// A shared slab's first page: what lets a restarted process recognise it.
struct SharedSlabHeader {
  char magic[8];  // "UPSLAB01"
  uint64_t id;
  uint64_t size;  // data bytes after the header page
};
constexpr char kSharedSlabMagic[8] = {'U', 'P', 'S', 'L', 'A', 'B', '0', '1'};

// The header takes one page, so the data after it can be mapped on its own
// (mapping offsets are whole pages: 16 KiB on Apple silicon).
uint64_t SharedHeaderBytes() {
  static_assert(sizeof(SharedSlabHeader) <= 4096, "the header fits the smallest page");
  return platform::PageSize();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Slab>> Slab::Create(uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("slab size must be positive");
  auto memory = platform::CreateSharedMemory(size);
  if (!memory.ok()) return memory.status();
  auto data = platform::MapShared(memory->fd.get(), 0, memory->size);
  if (!data.ok()) return data.status();
  if (!memory->huge_pages) platform::AdviseHugePages(*data, memory->size);
  return std::unique_ptr<Slab>(new Slab(std::move(*memory), *data, RandomId(), 0));
}

absl::StatusOr<std::unique_ptr<Slab>> Slab::OpenShared(const std::string& name, uint64_t size,
                                                       bool* reused) {
  *reused = false;
  if (size == 0) return absl::InvalidArgumentError("slab size must be positive");
  const uint64_t header_bytes = SharedHeaderBytes();
  const uint64_t data_size = platform::RoundUp(size, platform::PageSize());
  const uint64_t total = header_bytes + data_size;
  auto existing = platform::OpenNamedMemory(name);
  if (existing.ok()) {
    // Read the header through a mapping: macOS shm objects have no read().
    if (existing->size == total) {
      auto p = platform::MapShared(existing->fd.get(), 0, total);
      if (!p.ok()) return p.status();
      SharedSlabHeader header{};
      std::memcpy(&header, *p, sizeof header);
      if (std::memcmp(header.magic, kSharedSlabMagic, sizeof header.magic) == 0 &&
          header.size == data_size && header.id != 0) {
        platform::AdviseHugePages(*p, total);
        *reused = true;
        return std::unique_ptr<Slab>(
            new Slab(std::move(*existing), *p + header_bytes, header.id, header_bytes));
      }
      platform::Unmap(*p, total);
    }
    // Another size or not a slab: start over.
    existing = absl::NotFoundError("replaced");
    (void)platform::UnlinkNamedMemory(name);
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  auto memory = platform::CreateNamedMemory(name, total);
  if (!memory.ok()) return memory.status();
  auto p = platform::MapShared(memory->fd.get(), 0, total);
  if (!p.ok()) {
    (void)platform::UnlinkNamedMemory(name);
    return p.status();
  }
  platform::AdviseHugePages(*p, total);
  SharedSlabHeader header{};
  std::memcpy(header.magic, kSharedSlabMagic, sizeof header.magic);
  header.id = RandomId();
  header.size = data_size;
  std::memcpy(*p, &header, sizeof header);
  return std::unique_ptr<Slab>(
      new Slab(std::move(*memory), *p + header_bytes, header.id, header_bytes));
}

absl::Status Slab::UnlinkShared(const std::string& name) {
  return platform::UnlinkNamedMemory(name);
}

Slab::Slab(platform::SharedMemory memory, uint8_t* data, uint64_t id, uint64_t header_bytes)
    : fd_(std::move(memory.fd)),
      data_(data),
      size_(memory.size - header_bytes),
      huge_pages_(memory.huge_pages),
      size_fixed_(memory.size_fixed),
      id_(id),
      header_bytes_(header_bytes) {}

Slab::~Slab() { platform::Unmap(data_ - header_bytes_, size_ + header_bytes_); }

absl::Duration Slab::Prefault(int threads) { return platform::Prefault(data_, size_, threads); }

absl::StatusOr<std::span<uint8_t>> Slab::Range(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::OutOfRangeError(
        absl::StrFormat("range [%u, +%u) is outside the slab of %u bytes", offset, length, size_));
  }
  return std::span<uint8_t>(data_ + offset, length);
}

}  // namespace unipool
