#include "unipool/shm/write_ahead.h"

#include <utility>

namespace unipool {

WriteAhead::~WriteAhead() {
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    queue_.clear();
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

bool WriteAhead::Add(uint64_t bytes, std::shared_ptr<const void> keep,
                     std::function<void()> fault) {
  absl::MutexLock lock(&mu_);
  if (stop_ || queued_bytes_ + bytes > kMaxQueuedBytes) return false;
  queue_.push_back({bytes, std::move(keep), std::move(fault)});
  queued_bytes_ += bytes;
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  return true;
}

uint64_t WriteAhead::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

void WriteAhead::Run() {
  while (true) {
    Work work;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work.fault();
    absl::MutexLock lock(&mu_);
    queued_bytes_ -= work.bytes;
    ++done_;
  }
}

}  // namespace unipool
