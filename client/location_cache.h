// The client's cache of object locations, so that a repeated get of a hot
// page is one read from a node with no directory round trip. An entry is
// trusted until it expires (by default when the directory's read lease ends,
// during which the directory does not reuse the memory); a read from a cached
// location is verified against the cached checksum like any other, and a
// mismatch or a missing node sends the get back to the directory. So a stale
// entry costs a retry, never wrong bytes.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_CLIENT_LOCATION_CACHE_H_
#define UNIPOOL_CLIENT_LOCATION_CACHE_H_

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/common/string_map.h"

namespace unipool {

template <typename Location>
class LocationCache {
 public:
  // Holds at most `capacity` entries (0: caches nothing).
  explicit LocationCache(size_t capacity) : capacity_(capacity) {}

  std::optional<Location> Get(std::string_view key, absl::Time now) {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    if (it->second.expires <= now) {
      map_.erase(it);
      return std::nullopt;
    }
    return it->second.location;
  }

  void Put(std::string_view key, const Location& location, absl::Time expires) {
    if (capacity_ == 0) return;
    absl::MutexLock lock(&mu_);
    if (map_.size() >= capacity_ && !map_.contains(key)) {
      // Full: drop about an eighth, arbitrary entries (hash order): cheap,
      // and hot keys come back with their next lookup.
      size_t drop = std::max<size_t>(1, capacity_ / 8);
      for (auto it = map_.begin(); it != map_.end() && drop > 0; --drop) map_.erase(it++);
    }
    map_[std::string(key)] = Entry{location, expires};
  }

  void Erase(std::string_view key) {
    absl::MutexLock lock(&mu_);
    if (auto it = map_.find(key); it != map_.end()) map_.erase(it);
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return map_.size();
  }

 private:
  struct Entry {
    Location location;
    absl::Time expires;
  };
  const size_t capacity_;
  mutable absl::Mutex mu_;
  StringMap<Entry> map_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_LOCATION_CACHE_H_
