// Space allocation inside one node's slab.
//
// Best fit over free extents, coalesced on free. Sizes are rounded up to
// kAllocationAlignment (platform::kAllocationAlignment: 4 KiB in the Linux
// build, 16 KiB, Apple silicon's page, in the POSIX/macOS build; set with
// -DUNIPOOL_ALLOCATION_ALIGNMENT), which keeps objects page-aligned. Best fit with immediate
// coalescing keeps external fragmentation low for mixed 4 KiB..80 MiB workloads (Wilson et al.,
// "Dynamic Storage Allocation: A Survey"); the tests measure the bound under random churn.
//
// Thread safety: not thread-safe; the directory guards it with its mutex.
#ifndef UNIPOOL_DIRECTORY_ALLOCATOR_H_
#define UNIPOOL_DIRECTORY_ALLOCATOR_H_

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "unipool/platform/memory.h"

namespace unipool {

inline constexpr uint64_t kAllocationAlignment = platform::kAllocationAlignment;

inline constexpr uint64_t RoundUpToAllocation(uint64_t length) {
  return (length + kAllocationAlignment - 1) / kAllocationAlignment * kAllocationAlignment;
}

class SlabAllocator {
 public:
  // Manages [0, capacity), rounded down to the alignment.
  explicit SlabAllocator(uint64_t capacity);

  // Returns the offset of a free range of at least `length` bytes, or
  // nullopt when no single free extent is large enough. REQUIRES: length > 0.
  std::optional<uint64_t> Allocate(uint64_t length);

  // Returns a range obtained from Allocate or Claim (same length).
  void Free(uint64_t offset, uint64_t length);

  // Marks a specific range as used (rebuilding state after a restart).
  // Returns false, changing nothing, when any part of it is not free.
  bool Claim(uint64_t offset, uint64_t length);

  uint64_t capacity() const { return capacity_; }
  uint64_t used() const { return capacity_ - free_bytes_; }
  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t largest_free() const;
  size_t free_extents() const { return by_offset_.size(); }

 private:
  void InsertFree(uint64_t offset, uint64_t length);
  void EraseFree(uint64_t offset, uint64_t length);

  uint64_t capacity_;
  uint64_t free_bytes_;
  absl::btree_map<uint64_t, uint64_t> by_offset_;             // offset -> length
  absl::btree_set<std::pair<uint64_t, uint64_t>> by_length_;  // (length, offset)
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_ALLOCATOR_H_
