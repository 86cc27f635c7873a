// Process plumbing shared by the long-running programs.
#ifndef UNIPOOL_COMMON_PROCESS_H_
#define UNIPOOL_COMMON_PROCESS_H_

#include <string>
#include <vector>

namespace unipool {

// Parses command-line flags with Abseil, accepting both spellings of
// multi-word flags (--pool-size and --pool_size). Returns the positional
// arguments, argv[0] first.
std::vector<char*> ParseFlags(int argc, char** argv, const char* usage);

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
