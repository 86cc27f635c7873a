#include "unipool/common/process.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace unipool {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Abseil's parser exits with status 1 on a bad flag; the programs promise 2
// for bad usage (and 0 for --help). While it parses, an exit handler turns
// its exit status into ours.
bool parsing_flags = false;
bool help_requested = false;

void ExitAsUsage() {
  if (!parsing_flags) return;
  std::cout.flush();  // the help text; _exit flushes nothing
  std::cerr.flush();
  std::fflush(nullptr);
  _exit(help_requested ? 0 : 2);
}

// --help lists every flag of this project linked into the program (not only
// those of a file named after it, which is Abseil's default and matches none
// of ours), and none of Abseil's own.
bool IsProjectFlagFile(absl::string_view file) { return !absl::StrContains(file, "absl/"); }

}  // namespace

void ExitBadUsage(std::string_view program, std::string_view message) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()), program.data(),
               static_cast<int>(message.size()), message.data());
  std::exit(2);
}

void RequirePositiveDuration(std::string_view program, std::string_view flag,
                             absl::Duration value) {
  if (value > absl::ZeroDuration() && value != absl::InfiniteDuration()) return;
  ExitBadUsage(program, absl::StrFormat("--%s must be a positive, finite duration, not %s", flag,
                                        absl::FormatDuration(value)));
}

uint64_t PhysicalMemoryBytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::vector<char*> ParseFlags(int argc, char** argv, const char* usage, bool positional) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = IsProjectFlagFile;
  config.contains_help_flags = IsProjectFlagFile;
  absl::SetFlagsUsageConfig(config);
  // Abseil flag names use underscores; users type hyphens. Rewrite the name
  // part of every --flag before the first bare "--".
  static std::vector<std::string> rewritten;
  rewritten.assign(argv, argv + argc);
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    std::string& arg = rewritten[i];
    if (arg == "--") break;
    if (i > 0 && arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      size_t end = arg.find('=');
      if (end == std::string::npos) end = arg.size();
      for (size_t c = 2; c < end; ++c) {
        if (arg[c] == '-') arg[c] = '_';
      }
    }
  }
  for (std::string& arg : rewritten) {
    if (absl::StartsWith(arg, "--help") || arg == "--version") help_requested = true;
    args.push_back(arg.data());
  }
  std::atexit(ExitAsUsage);
  parsing_flags = true;
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  parsing_flags = false;
  if (!positional && rest.size() > 1) {
    std::fprintf(stderr,
                 "%s: unexpected argument '%s' (flags are --name=value; --help lists them)\n",
                 argv[0], rest[1]);
    std::exit(2);
  }
  return rest;
}

int WaitForTerminationSignal() {
  sigset_t set = TerminationSignals();
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

bool WriteFileAtomically(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << contents;
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace unipool
