#include "unipool/testing/wait.h"

#include <fstream>
#include <sstream>

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

bool WaitForFileText(const std::string& path, std::string_view text, absl::Duration bound) {
  return WaitUntil(
      [&] {
        std::ifstream in(path);
        std::stringstream all;
        all << in.rdbuf();
        return all.str().find(text) != std::string::npos;
      },
      bound);
}

}  // namespace unipool::testing
