// Running real programs from tests: the unipoolctl binary, chromium.
// Thread safety: not thread-safe; one test thread drives each object.
#ifndef UNIPOOL_TESTING_SUBPROCESS_H_
#define UNIPOOL_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace unipool::testing {

struct RunResult {
  int exit_code = -1;  // -1: killed on timeout or by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `argv`, the current environment plus `env`
// ("NAME=value"), `input` on stdin; returns once it exits, killing it after
// `timeout`.
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& input = "", absl::Duration timeout = absl::Seconds(60));

// Like Run, with stdout and stderr on a pseudo-terminal (as a person at a
// shell sees it) and stdin a pipe fed by `input_chunks`, one chunk every
// `chunk_interval`. Returns what the terminal showed.
RunResult RunOnTerminal(const std::vector<std::string>& argv,
                        const std::vector<std::string>& input_chunks, absl::Duration chunk_interval,
                        absl::Duration timeout = absl::Seconds(60));

// A program left running: its stdout is readable line by line.
class Background {
 public:
  // Starts argv; stdout is a pipe, stderr goes to `stderr_file`.
  Background(const std::vector<std::string>& argv, const std::string& stderr_file);
  ~Background();  // SIGKILL if still running
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  // Reads stdout until a line containing `marker` arrives; returns all of it
  // so far. Empty when the program exits or the time runs out first.
  std::string ReadUntil(const std::string& marker, absl::Duration timeout);
  // Sends `signal` and waits for the exit; returns the exit code, or -1 when
  // it did not exit within `timeout` (it is then killed) or died of a signal.
  int Stop(int signal, absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_SUBPROCESS_H_
