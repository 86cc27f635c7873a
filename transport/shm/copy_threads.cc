#include "unipool/shm/copy_threads.h"

namespace unipool {

CopyThreads::CopyThreads(int threads) {
  for (int t = 1; t < threads; ++t) helpers_.emplace_back([this] { Help(); });
}

CopyThreads::~CopyThreads() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& helper : helpers_) helper.join();
}

void CopyThreads::Drain(Batch& batch) {
  for (size_t i = batch.next.fetch_add(1); i < batch.count; i = batch.next.fetch_add(1)) {
    (*batch.copy)(i);
  }
}

void CopyThreads::Help() {
  uint64_t seen = 0;
  while (true) {
    Batch* batch = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this, seen]()
                       ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_ || generation_ != seen; };
      mu_.Await(absl::Condition(&woken));
      if (stop_) return;
      seen = generation_;
      if (batch_ == nullptr) continue;  // woke after that batch was done
      batch = batch_;
      ++copying_;
    }
    Drain(*batch);
    absl::MutexLock lock(&mu_);
    --copying_;
  }
}

void CopyThreads::ForEach(size_t count, uint64_t bytes, const std::function<void(size_t)>& copy) {
  if (helpers_.empty() || count < 2 || bytes < kParallelFromBytes || !busy_.TryLock()) {
    for (size_t i = 0; i < count; ++i) copy(i);
    return;
  }
  Batch batch;
  batch.copy = &copy;
  batch.count = count;
  {
    absl::MutexLock lock(&mu_);
    batch_ = &batch;
    ++generation_;
  }
  Drain(batch);
  {
    // Every page is taken; wait for the helpers still copying theirs.
    absl::MutexLock lock(&mu_);
    batch_ = nullptr;
    auto finished = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return copying_ == 0; };
    mu_.Await(absl::Condition(&finished));
  }
  busy_.Unlock();
}

}  // namespace unipool
