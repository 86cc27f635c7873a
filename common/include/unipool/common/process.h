// Process plumbing shared by the long-running programs.
#ifndef UNIPOOL_COMMON_PROCESS_H_
#define UNIPOOL_COMMON_PROCESS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace unipool {

// Parses command-line flags with Abseil, accepting both spellings of
// multi-word flags (--pool-size and --pool_size). Returns the positional
// arguments, argv[0] first. Bad usage (an unknown flag, a bad value, or any
// positional argument unless `positional`) exits with status 2 and one line
// on stderr; --help lists the program's own flags and exits 0.
std::vector<char*> ParseFlags(int argc, char** argv, const char* usage, bool positional = false);

// Prints "PROGRAM: MESSAGE" on stderr and exits with status 2 (bad usage).
[[noreturn]] void ExitBadUsage(std::string_view program, std::string_view message);

// A flag's duration must be positive and finite; else ExitBadUsage naming
// the flag ("--put-timeout must be a positive duration, not -5s").
void RequirePositiveDuration(std::string_view program, std::string_view flag, absl::Duration value);

// Bytes of physical memory on this machine (0 if unknown).
uint64_t PhysicalMemoryBytes();

// Blocks SIGINT and SIGTERM (and ignores SIGPIPE). Call first thing in main,
// before any thread starts, so every thread inherits the mask.
void BlockTerminationSignals();

// Waits for SIGINT or SIGTERM; returns its number.
// REQUIRES: BlockTerminationSignals() was called.
int WaitForTerminationSignal();

// Writes `contents` to `path` through a temporary file and rename, so a
// reader never sees half of it. Returns false on failure.
bool WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_PROCESS_H_
