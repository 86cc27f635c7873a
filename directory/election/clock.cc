#include "unipool/election/clock.h"

#include <chrono>

namespace unipool {
namespace {

class Steady final : public Clock {
 public:
  absl::Time Now() const override {
    return absl::UnixEpoch() +
           absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  }
};

}  // namespace

Clock* SteadyClock() {
  static Steady* clock = new Steady();
  return clock;
}

}  // namespace unipool
