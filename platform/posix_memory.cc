// Memory, POSIX/macOS build: shm_open with a random name, unlinked as soon as
// it is sized (only the fd reaches other processes); no huge-page hints
// (macOS has none for shared memory; Apple silicon's base page is 16 KiB).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "platform_internal.h"
#include "unipool/platform/memory.h"

namespace unipool::platform {

std::string_view Name() { return "posix"; }

absl::StatusOr<SharedMemory> CreateSharedMemory(uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("shared memory size must be positive");
  std::random_device random;
  // "/up-" and 16 hex digits: well inside macOS's 31 bytes.
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint64_t tag = (static_cast<uint64_t>(random()) << 32) ^ random();
    std::string name = absl::StrFormat("/up-%016x", tag);
    auto memory = CreateNamedMemory(name, RoundUp(size, PageSize()));
    if (absl::IsAlreadyExists(memory.status())) continue;
    if (memory.ok()) shm_unlink(name.c_str());  // nobody else can open it now
    return memory;
  }
  return absl::ResourceExhaustedError("no free shared-memory name after 8 tries");
}

// macOS sizes a shm object once: every later ftruncate fails (EINVAL), so a
// same-size ftruncate is a harmless probe. Elsewhere (this build on Linux)
// it succeeds and the size is not fixed: same-user processes holding the fd
// could change it, and clients check the size when they map.
bool ShmSizeIsFixed(int fd, uint64_t size) { return ftruncate(fd, static_cast<off_t>(size)) != 0; }

void AdviseHugePages(void*, uint64_t) {}

std::string SharedHugePagesMode() { return ""; }

void PopulatePages(uint8_t* address, uint64_t length) { TouchPages(address, length); }

void PopulatePagesShared(uint8_t* address, uint64_t length) { ReadPages(address, length); }

int PopulateMapFlag() { return 0; }

bool MovePages(void* from, void* to, uint64_t length) {
  // No mremap: fresh pages over `to`, filled from `from`.
  void* fresh = mmap(to, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
  if (fresh == MAP_FAILED) return false;
  std::memcpy(to, from, length);
  mprotect(to, length, PROT_READ);
  munmap(from, length);
  return true;
}

}  // namespace unipool::platform
