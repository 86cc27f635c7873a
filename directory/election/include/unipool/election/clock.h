// The time the election measures its lease deadlines with: monotonic, so a
// wall-clock step (NTP, a laptop waking) cannot stretch a leader's term.
// Unit tests pass a fake one.
// Thread safety: implementations are thread-safe.
#ifndef UNIPOOL_ELECTION_CLOCK_H_
#define UNIPOOL_ELECTION_CLOCK_H_

#include "absl/time/time.h"

namespace unipool {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic: an absl::Time whose epoch is arbitrary (not wall time).
  virtual absl::Time Now() const = 0;
};

// The process's monotonic clock (std::chrono::steady_clock). Never freed.
Clock* SteadyClock();

}  // namespace unipool

#endif  // UNIPOOL_ELECTION_CLOCK_H_
