#include "unipool/testing/wait.h"

#include "absl/time/clock.h"

namespace unipool::testing {

bool WaitUntil(absl::FunctionRef<bool()> done, absl::Duration bound, absl::Duration every) {
  absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(every);
  }
  return done();
}

}  // namespace unipool::testing
