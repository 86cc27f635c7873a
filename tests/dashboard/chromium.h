// Headless Chromium driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-terminated JSON messages on fds 3 and 4),
// so a test can load a page, read its live DOM and take a screenshot.
//
// Thread safety: not thread-safe.
#ifndef UNIPOOL_TESTS_DASHBOARD_CHROMIUM_H_
#define UNIPOOL_TESTS_DASHBOARD_CHROMIUM_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace unipool::testing {

class Chromium {
 public:
  // Starts Debian's chromium headless with a fresh profile in `work_dir`
  // and a `width` x `height` window. FailedPrecondition when chromium is
  // not installed (scripts/install-test-deps.sh installs it).
  static absl::StatusOr<std::unique_ptr<Chromium>> Launch(const std::string& work_dir, int width,
                                                          int height);
  ~Chromium();  // closes the browser; kills it if it does not exit
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  // Opens `url` in a new tab; later calls act on that tab.
  absl::Status Open(const std::string& url);
  // The value of a JavaScript expression evaluated in the tab (as JSON);
  // an error when it throws.
  absl::StatusOr<nlohmann::json> Evaluate(const std::string& expression);
  // A PNG of the tab's viewport.
  absl::StatusOr<std::string> Screenshot();

 private:
  Chromium() = default;
  // Sends one command and waits for its answer (events in between are
  // skipped).
  absl::StatusOr<nlohmann::json> Call(const std::string& method, nlohmann::json params,
                                      bool in_tab);

  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string buffer_;
  int next_id_ = 1;
  std::string session_;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTS_DASHBOARD_CHROMIUM_H_
