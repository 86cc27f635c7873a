// How a BatchPut waits for room in a full pool (docs/directory.md, "A full
// pool waits"): the directory answers an item ResourceExhausted with a
// retry hint (unipool/common/retry_after.h) while the only room is held by
// read leases, held extents or reservations that will end, and the client
// sleeps on its own thread, then asks again, until ClientOptions::
// pool_full_wait is spent. Nothing on the directory waits with it.
// Private to the SDK.
//
// Thread safety: one per BatchPut chunk, used by its thread only.
#ifndef UNIPOOL_CLIENT_POOL_FULL_WAIT_H_
#define UNIPOOL_CLIENT_POOL_FULL_WAIT_H_

#include <algorithm>
#include <cstdint>
#include <random>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace unipool {

class PoolFullWait {
 public:
  // Between two asks, at least kMinSleep (never a busy loop, whatever the
  // hint) and at most kMaxSleep (room may come sooner than the hint says:
  // a remove, a commit that makes an object evictable).
  static constexpr absl::Duration kMinSleep = absl::Milliseconds(20);
  static constexpr absl::Duration kMaxSleep = absl::Seconds(1);

  explicit PoolFullWait(absl::Duration budget) : start_(absl::Now()), deadline_(start_ + budget) {}

  // Sleeps for `hint` (bounded as above, plus up to a quarter more so that
  // the puts told the same time do not all come back at once), never past
  // the budget. False, without sleeping, once the budget is spent.
  bool Sleep(absl::Duration hint) {
    absl::Time now = absl::Now();
    if (now >= deadline_) return false;
    absl::Duration sleep = std::clamp(hint, kMinSleep, kMaxSleep);
    sleep += sleep * std::uniform_real_distribution<double>(0, 0.25)(Random());
    absl::SleepFor(std::min(sleep, deadline_ - now));
    ++rounds_;
    return true;
  }
  int rounds() const { return rounds_; }
  absl::Duration waited() const {
    return rounds_ == 0 ? absl::ZeroDuration() : absl::Now() - start_;
  }

 private:
  static std::minstd_rand& Random() {
    thread_local std::minstd_rand random(std::random_device{}());
    return random;
  }

  const absl::Time start_;
  const absl::Time deadline_;
  int rounds_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_POOL_FULL_WAIT_H_
