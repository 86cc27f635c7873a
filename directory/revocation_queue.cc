#include "unipool/directory/revocation_queue.h"

#include <algorithm>

namespace unipool {

void RevocationQueue::Push(RevokePlan plan) {
  absl::MutexLock lock(&mu_);
  if (plans_.size() >= kMaxQueued) {
    plans_.pop_front();
    ++dropped_;
  }
  plans_.push_back(std::move(plan));
}

std::vector<RevokePlan> RevocationQueue::Take(size_t max, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !plans_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  std::vector<RevokePlan> taken;
  size_t n = std::min(max, plans_.size());
  taken.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    taken.push_back(std::move(plans_.front()));
    plans_.pop_front();
  }
  return taken;
}

uint64_t RevocationQueue::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace unipool
