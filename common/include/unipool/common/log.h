// One line per event on stderr: "2026-11-25T10:00:00.123Z I directory: text".
// Thread-safe: each line is written with one write(2).
#ifndef UNIPOOL_COMMON_LOG_H_
#define UNIPOOL_COMMON_LOG_H_

#include <string_view>

#include "absl/strings/str_format.h"

namespace unipool {

enum class LogLevel { kInfo, kWarning, kError };

// The component name printed on every line ("directory", "node n1", ...).
// Set once at program start; defaults to the program name.
void SetLogComponent(std::string_view component);

void LogLine(LogLevel level, std::string_view text);

template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogLevel::kInfo, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarning(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogLevel::kWarning, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogError(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogLevel::kError, absl::StrFormat(format, args...));
}

}  // namespace unipool

#endif  // UNIPOOL_COMMON_LOG_H_
