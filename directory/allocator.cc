#include "unipool/directory/allocator.h"

#include <cassert>

namespace unipool {

SlabAllocator::SlabAllocator(uint64_t capacity)
    : capacity_(capacity / kAllocationAlignment * kAllocationAlignment), free_bytes_(0) {
  if (capacity_ > 0) InsertFree(0, capacity_);
}

void SlabAllocator::InsertFree(uint64_t offset, uint64_t length) {
  by_offset_.emplace(offset, length);
  by_length_.emplace(length, offset);
  free_bytes_ += length;
}

void SlabAllocator::EraseFree(uint64_t offset, uint64_t length) {
  by_offset_.erase(offset);
  by_length_.erase({length, offset});
  free_bytes_ -= length;
}

std::optional<uint64_t> SlabAllocator::Allocate(uint64_t length) {
  assert(length > 0);
  if (length > capacity_) return std::nullopt;  // also keeps the round-up from overflowing
  uint64_t rounded = RoundUpToAllocation(length);
  // Smallest extent that fits; among equals, the lowest address.
  auto it = by_length_.lower_bound({rounded, 0});
  if (it == by_length_.end()) return std::nullopt;
  auto [extent_length, offset] = *it;
  EraseFree(offset, extent_length);
  if (extent_length > rounded) InsertFree(offset + rounded, extent_length - rounded);
  return offset;
}

void SlabAllocator::Free(uint64_t offset, uint64_t length) {
  uint64_t rounded = RoundUpToAllocation(length);
  uint64_t start = offset;
  uint64_t end = offset + rounded;
  // Merge with the free neighbour after ...
  auto next = by_offset_.lower_bound(end);
  if (next != by_offset_.end() && next->first == end) {
    end += next->second;
    EraseFree(next->first, next->second);
  }
  // ... and the one before.
  auto after = by_offset_.lower_bound(start);
  if (after != by_offset_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == start) {
      start = prev->first;
      EraseFree(prev->first, prev->second);
    }
  }
  InsertFree(start, end - start);
}

bool SlabAllocator::Claim(uint64_t offset, uint64_t length) {
  if (length == 0 || length > capacity_ || offset > capacity_ ||
      offset % kAllocationAlignment != 0) {
    return false;  // checked first so that nothing below can overflow
  }
  uint64_t rounded = RoundUpToAllocation(length);
  if (rounded > capacity_ - offset) return false;
  // The free extent containing `offset` must cover the whole range.
  auto it = by_offset_.upper_bound(offset);
  if (it == by_offset_.begin()) return false;
  --it;
  auto [extent_offset, extent_length] = *it;
  if (extent_offset + extent_length < offset + rounded) return false;
  EraseFree(extent_offset, extent_length);
  if (offset > extent_offset) InsertFree(extent_offset, offset - extent_offset);
  uint64_t tail = extent_offset + extent_length - (offset + rounded);
  if (tail > 0) InsertFree(offset + rounded, tail);
  return true;
}

uint64_t SlabAllocator::largest_free() const {
  return by_length_.empty() ? 0 : by_length_.rbegin()->first;
}

}  // namespace unipool
