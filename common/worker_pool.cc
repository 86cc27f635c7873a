#include "worker_pool.h"

#include <utility>

namespace unipool {

void WorkerPool::Run(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  jobs_.push_back(std::move(job));
  if (idle_ < static_cast<int>(jobs_.size()) && static_cast<int>(threads_.size()) < max_threads_) {
    threads_.emplace_back([this] { Loop(); });
  }
}

void WorkerPool::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    ++idle_;
    mu_.Await(absl::Condition(
        +[](WorkerPool* pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool->mu_) {
          return !pool->jobs_.empty() || pool->stopping_;
        },
        this));
    --idle_;
    if (jobs_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    mu_.Unlock();
    job();
    mu_.Lock();
  }
}

void WorkerPool::Shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace unipool
