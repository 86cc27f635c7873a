#include "unipool/common/log.h"

#include <unistd.h>

#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace unipool {
namespace {

absl::Mutex component_mu;
std::string& Component() ABSL_EXCLUSIVE_LOCKS_REQUIRED(component_mu) {
  static auto* component = new std::string("unipool");
  return *component;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

}  // namespace

void SetLogComponent(std::string_view component) {
  absl::MutexLock lock(&component_mu);
  Component() = std::string(component);
}

void LogLine(LogLevel level, std::string_view text) {
  std::string component;
  {
    absl::MutexLock lock(&component_mu);
    component = Component();
  }
  std::string line = absl::StrFormat(
      "%s %c %s: %s\n", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      LevelLetter(level), component, text);
  // One write(2) per line keeps lines from different threads whole.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace unipool
