// Spreads one batch's page copies over a few threads, so that a same-host
// batch is bounded by memory bandwidth rather than by one core's copy rate.
// One page is never split: a get verifies its page's XXH3 while copying it,
// and that hash is sequential.
//
// Thread safety: thread-safe. One batch at a time runs in parallel; a batch
// that arrives while another has the threads runs on its caller's thread
// (several callers are already parallel).
#ifndef UNIPOOL_SHM_COPY_THREADS_H_
#define UNIPOOL_SHM_COPY_THREADS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace unipool {

class CopyThreads {
 public:
  // Batches smaller than this stay on the caller's thread: waking a helper
  // costs about as much as copying a few 64 KiB pages.
  static constexpr uint64_t kParallelFromBytes = 1ull << 20;

  // `threads` copy at once, the caller included (so threads - 1 helpers are
  // started); 1 or less: every copy on the caller's thread.
  explicit CopyThreads(int threads);
  ~CopyThreads();
  CopyThreads(const CopyThreads&) = delete;
  CopyThreads& operator=(const CopyThreads&) = delete;

  // Runs copy(0) .. copy(count - 1), spread over the threads when `bytes`
  // reach kParallelFromBytes and the threads are free, and returns when all
  // are done. REQUIRES: the copies touch disjoint memory.
  void ForEach(size_t count, uint64_t bytes, const std::function<void(size_t)>& copy);

  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

 private:
  struct Batch {
    const std::function<void(size_t)>* copy = nullptr;
    size_t count = 0;
    std::atomic<size_t> next{0};
  };
  void Help();
  // Copies the batch's pages until none is left.
  static void Drain(Batch& batch);

  absl::Mutex busy_;  // held by the batch that has the helpers
  absl::Mutex mu_;
  Batch* batch_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // one per batch handed out
  int copying_ ABSL_GUARDED_BY(mu_) = 0;          // helpers inside batch_
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> helpers_;
};

}  // namespace unipool

#endif  // UNIPOOL_SHM_COPY_THREADS_H_
