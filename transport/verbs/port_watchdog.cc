#include "unipool/verbs/port_watchdog.h"

#include <sys/socket.h>

#include <vector>

#include "unipool/common/log.h"

namespace unipool {

PortWatchdog::~PortWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

PortWatchdog::Guard PortWatchdog::Watch(std::function<bool()> port_active, int fd) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  entries_[id] = Entry{std::move(port_active), fd, false};
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  return Guard(this, id);
}

PortWatchdog::Guard::~Guard() {
  if (dog_ != nullptr) dog_->Forget(id_);
}

bool PortWatchdog::Guard::fired() const { return dog_ != nullptr && dog_->Fired(id_); }

void PortWatchdog::Forget(uint64_t id) {
  absl::MutexLock lock(&mu_);
  entries_.erase(id);
}

bool PortWatchdog::Fired(uint64_t id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.fired;
}

uint64_t PortWatchdog::fired() const {
  absl::MutexLock lock(&mu_);
  return fired_total_;
}

void PortWatchdog::Run() {
  for (;;) {
    std::vector<std::pair<uint64_t, std::function<bool()>>> checks;
    {
      absl::MutexLock lock(&mu_);
      auto busy_or_stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !entries_.empty();
      };
      mu_.Await(absl::Condition(&busy_or_stopping));
      if (stopping_) return;
      for (const auto& [id, entry] : entries_) {
        if (!entry.fired) checks.emplace_back(id, entry.port_active);
      }
    }
    // Port queries outside the lock: a guard may end meanwhile (then its
    // entry is gone below and its socket is left alone).
    std::vector<uint64_t> down;
    for (const auto& [id, active] : checks) {
      if (!active()) down.push_back(id);
    }
    {
      absl::MutexLock lock(&mu_);
      for (uint64_t id : down) {
        auto it = entries_.find(id);
        if (it == entries_.end() || it->second.fired) continue;
        // Under the lock: the guard (and so the socket) cannot end meanwhile.
        ::shutdown(it->second.fd, SHUT_RDWR);
        it->second.fired = true;
        ++fired_total_;
        LogWarning("RDMA port down: ended the request in flight on its path's connection");
      }
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);
      if (stopping_) return;
    }
  }
}

}  // namespace unipool
