#include "unipool/shm/view_maps.h"

#include <utility>

#include "unipool/platform/memory.h"

namespace unipool {

ViewMaps::~ViewMaps() {
  absl::MutexLock lock(&mu_);
  for (const Idle& idle : lru_) platform::Unmap(const_cast<uint8_t*>(idle.map), idle.range.length);
}

absl::StatusOr<const uint8_t*> ViewMaps::Take(uint64_t at, uint64_t length) {
  {
    absl::MutexLock lock(&mu_);
    auto it = by_range_.find(Range{at, length});
    if (it != by_range_.end()) {
      Lru::iterator idle = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) by_range_.erase(it);
      const uint8_t* map = idle->map;
      lru_.erase(idle);
      idle_bytes_ -= length;
      ++reused_;
      return map;
    }
  }
  return platform::MapSharedReadOnly(fd_, at, length);  // outside the lock: it maps every page
}

void ViewMaps::Give(const uint8_t* map, uint64_t at, uint64_t length) {
  absl::MutexLock lock(&mu_);
  Range range{at, length};
  by_range_[range].push_back(lru_.insert(lru_.end(), Idle{range, map}));
  idle_bytes_ += length;
  while (idle_bytes_ > limits_.max_idle_bytes || lru_.size() > limits_.max_idle_maps) {
    DropOldest();
  }
}

void ViewMaps::DropOldest() {
  Idle oldest = lru_.front();
  auto it = by_range_.find(oldest.range);
  // The oldest of its range is the first kept of them.
  it->second.erase(it->second.begin());
  if (it->second.empty()) by_range_.erase(it);
  lru_.pop_front();
  idle_bytes_ -= oldest.range.length;
  platform::Unmap(const_cast<uint8_t*>(oldest.map), oldest.range.length);
}

uint64_t ViewMaps::idle_maps() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

uint64_t ViewMaps::idle_bytes() const {
  absl::MutexLock lock(&mu_);
  return idle_bytes_;
}

uint64_t ViewMaps::reused() const {
  absl::MutexLock lock(&mu_);
  return reused_;
}

}  // namespace unipool
