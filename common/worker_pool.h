// A pool of threads that run blocking jobs (request handlers), started on
// demand up to a cap. Idle connections never occupy one: the server's event
// loop hands a connection to the pool only once a whole request has arrived.
//
// Thread-safe.
#ifndef UNIPOOL_COMMON_WORKER_POOL_H_
#define UNIPOOL_COMMON_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace unipool {

class WorkerPool {
 public:
  explicit WorkerPool(int max_threads) : max_threads_(max_threads) {}
  ~WorkerPool() { Shutdown(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; starts a thread when none is idle and the cap allows.
  // Jobs queued after Shutdown began are dropped.
  void Run(std::function<void()> job);
  // Runs every queued job, then joins the threads. Idempotent.
  void Shutdown();

  int threads() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(threads_.size());
  }

 private:
  void Loop();

  const int max_threads_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_WORKER_POOL_H_
