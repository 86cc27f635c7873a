// Faults slab ranges into this process ahead of the puts that will write
// them, on a thread of its own: the pre-handed reservations a client holds
// for its next puts (client/reservation_stock.h) are written seconds later,
// and without huge pages a client's first write into each slab page takes a
// page fault (in a VM, an exit to the hypervisor: tens of microseconds per
// 4 KiB, bench/results/analysis.md), which this moves off the put.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_SHM_WRITE_AHEAD_H_
#define UNIPOOL_SHM_WRITE_AHEAD_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace unipool {

class WriteAhead {
 public:
  // Work queued beyond this is dropped (the put then faults the pages in
  // itself): the client's reservation stock holds at most 256 MiB.
  static constexpr uint64_t kMaxQueuedBytes = 256ull << 20;

  WriteAhead() = default;
  ~WriteAhead();  // drops what is queued and joins the thread
  WriteAhead(const WriteAhead&) = delete;
  WriteAhead& operator=(const WriteAhead&) = delete;

  // Runs `fault` on the thread (started on the first call), in order. `keep`
  // is held until then (the mapping `fault` writes into). False when the
  // queue is full and the work was dropped.
  bool Add(uint64_t bytes, std::shared_ptr<const void> keep, std::function<void()> fault);

  // Ranges faulted in so far (for tests and stats).
  uint64_t done() const;

 private:
  struct Work {
    uint64_t bytes = 0;
    std::shared_ptr<const void> keep;
    std::function<void()> fault;
  };
  void Run();

  mutable absl::Mutex mu_;
  std::deque<Work> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);  // not joinable until the first Add
};

}  // namespace unipool

#endif  // UNIPOOL_SHM_WRITE_AHEAD_H_
