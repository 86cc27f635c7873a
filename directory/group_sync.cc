#include "unipool/directory/group_sync.h"

#include <algorithm>

namespace unipool {

uint64_t GroupSync::Written() {
  absl::MutexLock lock(&mu_);
  return ++written_;
}

absl::Status GroupSync::WaitDurable(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  while (synced_ < ticket) {
    if (ticket <= failed_through_) return failure_;
    if (syncing_) {
      // Wait for the running fsync; it may not cover this ticket (it started
      // before the write finished), then the loop runs or joins the next.
      mu_.Await(absl::Condition(
          +[](bool* syncing) { return !*syncing; }, &syncing_));
      continue;
    }
    syncing_ = true;
    uint64_t target = written_;  // every write with a ticket up to here has finished
    mu_.Unlock();
    absl::Status s = sync_();
    mu_.Lock();
    syncing_ = false;
    ++syncs_;
    if (s.ok()) {
      synced_ = std::max(synced_, target);
    } else {
      failure_ = s;
      failed_through_ = std::max(failed_through_, target);
    }
  }
  return absl::OkStatus();
}

absl::Status GroupSync::SyncAll() {
  uint64_t ticket;
  {
    absl::MutexLock lock(&mu_);
    ticket = written_;
  }
  return WaitDurable(ticket);
}

bool GroupSync::HasUnsynced() {
  absl::MutexLock lock(&mu_);
  return synced_ < written_;
}

uint64_t GroupSync::syncs() {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace unipool
