// Read-only mappings of one node's slab kept for reuse by later views
// (ShmNodeIo::MapView). Mapping a view costs an mmap that maps every page,
// and unmapping it a TLB shootdown on every core the process runs on (in a
// VM, about a millisecond: more than reading a 64 KiB page). Engines view
// the same hot KV pages again and again, so a released view's mapping waits
// here, idle, for the next view of the same range: that view costs only its
// checksum. The mappings are shared, so an idle one always shows the slab's
// current bytes, whatever the node stored there meanwhile.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_SHM_VIEW_MAPS_H_
#define UNIPOOL_SHM_VIEW_MAPS_H_

#include <cstdint>
#include <list>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace unipool {

class ViewMaps {
 public:
  struct Limits {
    uint64_t max_idle_bytes = 1ull << 30;  // address space (and page tables) kept idle
    uint64_t max_idle_maps = 4096;         // each one a kernel VMA (vm.max_map_count)
  };

  // `fd`: the slab's file, which must outlive this.
  explicit ViewMaps(int fd) : ViewMaps(fd, Limits{}) {}
  ViewMaps(int fd, Limits limits) : fd_(fd), limits_(limits) {}
  ~ViewMaps();  // unmaps the idle mappings
  ViewMaps(const ViewMaps&) = delete;
  ViewMaps& operator=(const ViewMaps&) = delete;

  // A read-only mapping of the fd's [at, +length) (both page aligned): an
  // idle one of that range if there is one, else a new one.
  absl::StatusOr<const uint8_t*> Take(uint64_t at, uint64_t length);
  // Keeps `map` (from Take, unchanged since) for a later Take of the same
  // range; the least recently kept ones are unmapped past the limits.
  void Give(const uint8_t* map, uint64_t at, uint64_t length);

  uint64_t idle_maps() const;
  uint64_t idle_bytes() const;
  uint64_t reused() const;  // Takes served by an idle mapping

 private:
  struct Range {
    uint64_t at = 0, length = 0;
    bool operator==(const Range&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Range& r) {
      return H::combine(std::move(h), r.at, r.length);
    }
  };
  struct Idle {
    Range range;
    const uint8_t* map = nullptr;
  };
  using Lru = std::list<Idle>;  // least recently given first

  void DropOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int fd_;
  const Limits limits_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);
  // The idle mappings of each range, most recently given last.
  absl::flat_hash_map<Range, std::vector<Lru::iterator>> by_range_ ABSL_GUARDED_BY(mu_);
  uint64_t idle_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_SHM_VIEW_MAPS_H_
