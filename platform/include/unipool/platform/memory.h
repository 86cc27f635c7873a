// Memory that other processes on this machine can map: the node's slab.
//
// Linux (UNIPOOL_PLATFORM=linux): a memfd (explicit huge pages when the
// administrator reserved some), sealed against shrinking and growing, so no
// holder of the fd can truncate it under the node or its clients.
// POSIX/macOS (UNIPOOL_PLATFORM=posix): a shm_open object with a random name,
// unlinked as soon as it is sized; macOS refuses every ftruncate after the
// first, so its size is fixed too (checked, see SlabMemory::size_fixed).
// Named objects (--slab-name) are POSIX shared memory in both builds.
//
// Every size and offset here follows PageSize() (16 KiB on Apple silicon),
// never a constant 4096.
//
// Thread safety: every function is thread-safe.
#ifndef UNIPOOL_PLATFORM_MEMORY_H_
#define UNIPOOL_PLATFORM_MEMORY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "unipool/platform/fd.h"

namespace unipool::platform {

// "linux" or "posix": the implementation this build uses.
std::string_view Name();

// sysconf(_SC_PAGESIZE): 4 KiB on x86-64 Linux, 16 KiB on Apple silicon.
uint64_t PageSize();

// The unit the directory allocates slab space in: every object's offset and
// reserved length are multiples of it. 4 KiB in the Linux build, 16 KiB in
// the POSIX build (Apple silicon's page, so an object never shares a page
// with another); set at build time with -DUNIPOOL_ALLOCATION_ALIGNMENT.
inline constexpr uint64_t kAllocationAlignment = UNIPOOL_ALLOCATION_ALIGNMENT;
static_assert(kAllocationAlignment >= 4096 &&
                  (kAllocationAlignment & (kAllocationAlignment - 1)) == 0,
              "the allocation alignment is a power of two of at least 4 KiB");

// `value` rounded up to a multiple of `unit`.
inline uint64_t RoundUp(uint64_t value, uint64_t unit) { return (value + unit - 1) / unit * unit; }

struct SharedMemory {
  Fd fd;
  uint64_t size = 0;        // bytes, a multiple of the page size in use
  bool huge_pages = false;  // backed by explicit huge pages (Linux MFD_HUGETLB)
  // Nobody, not even a process holding the fd, can change its size (Linux:
  // sealed; macOS: shm objects are sized once). When false (named objects on
  // Linux, any object in the POSIX build on Linux), a process of the same
  // user could truncate it; clients check the size when they map.
  bool size_fixed = false;
};

// Anonymous shareable memory of at least `size` bytes (rounded up to the
// page, or to 2 MiB with huge pages): no name anyone can open; it is handed
// to other processes only as an fd. ResourceExhausted when it cannot be had.
absl::StatusOr<SharedMemory> CreateSharedMemory(uint64_t size);

// Named POSIX shared memory that outlives the process. Names are "/x" or "x"
// (a leading slash is added), at most 30 characters after the slash (macOS
// allows 31 bytes in all): InvalidArgument otherwise.
absl::Status CheckSharedMemoryName(const std::string& name);
// NotFound when there is no object `name`.
absl::StatusOr<SharedMemory> OpenNamedMemory(const std::string& name);
// Creates `name` (0600) with `size` bytes. AlreadyExists when it exists.
absl::StatusOr<SharedMemory> CreateNamedMemory(const std::string& name, uint64_t size);
// NotFound when there is no object `name`.
absl::Status UnlinkNamedMemory(const std::string& name);

// Maps [offset, offset + length) of `fd` shared, read-write. offset must be
// a multiple of PageSize(). FailedPrecondition when the object is shorter
// than offset + length (someone announced more than there is: touching the
// missing part would be SIGBUS); ResourceExhausted when mmap fails.
absl::StatusOr<uint8_t*> MapShared(int fd, uint64_t offset, uint64_t length);
void Unmap(void* address, uint64_t length);

// Maps [offset, offset + length) of `fd` shared and read-only (a write
// through it is SIGSEGV): a view of memory that another process owns. Every
// page is mapped at once (Linux MAP_POPULATE), for a reader of the whole.
// offset must be a multiple of PageSize(); errors as MapShared.
absl::StatusOr<const uint8_t*> MapSharedReadOnly(int fd, uint64_t offset, uint64_t length);
// Replaces the pages at [address, +length) (a mapping of its own, page
// aligned) with private read-only memory holding the same bytes, at the same
// address: the owner may then reuse its memory while readers of the address
// see no change. Linux moves the copy in at once (mremap); elsewhere a
// reader during the call may see zeros. Unmap it as before.
absl::Status KeepPrivateCopy(const uint8_t* address, uint64_t length);

// Asks for transparent huge pages on [address, +length) (Linux
// MADV_HUGEPAGE); nothing where the system has no such hint for shared
// memory (macOS). Best effort.
void AdviseHugePages(void* address, uint64_t length);

// Whether a shared-memory slab that is not backed by explicit huge pages
// gets transparent ones when advised: Linux's shmem THP setting (`never`,
// `advise`, `always`, `within_size`, `deny`, `force`), or empty where the
// system has none (macOS) or does not say. With `never` or `deny` every
// process mapping the slab takes one page fault per 4 KiB page it first
// touches, clients included (the node's prefault fills only its own page
// tables).
std::string SharedHugePagesMode();

// Faults in every page of [address, +length) for writing without changing a
// byte (Linux: MADV_POPULATE_WRITE where the kernel has it; otherwise one
// read-and-write-back per page), split over `threads` threads for ranges of
// 1 GiB or more. REQUIRES: nobody else writes the range meanwhile. Returns
// how long it took.
absl::Duration Prefault(uint8_t* address, uint64_t length, int threads);

// Maps [address, +length) of a shared writable mapping into this process's
// page tables for writing, without changing a byte, so that a copy into it
// takes no page faults: Linux MADV_POPULATE_WRITE (5.14+, one system call
// instead of a fault per page); elsewhere, or where the kernel refuses it,
// one read per page (on Linux a read fault maps 16 pages of shared memory at
// once, writable; on macOS it maps at least the page). Unlike Prefault, safe
// while other threads write the range. `address` need not be page aligned.
void PrefaultForWriting(uint8_t* address, uint64_t length);

// Zeroed, page-aligned private memory from an anonymous mapping: the kind of
// memory Apple's ibv_reg_mr accepts (it refuses malloc'd memory; mmap'd and
// Metal shared-storage buffers pass). Unmapped on destruction. Movable.
class AnonymousPages {
 public:
  // `size` rounded up to the page. ResourceExhausted when mmap fails.
  static absl::StatusOr<AnonymousPages> Allocate(uint64_t size);
  AnonymousPages() = default;
  AnonymousPages(AnonymousPages&& other) noexcept { *this = std::move(other); }
  AnonymousPages& operator=(AnonymousPages&& other) noexcept;
  AnonymousPages(const AnonymousPages&) = delete;
  AnonymousPages& operator=(const AnonymousPages&) = delete;
  ~AnonymousPages() { Unmap(data_, size_); }

  uint8_t* get() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace unipool::platform

#endif  // UNIPOOL_PLATFORM_MEMORY_H_
