#include "unipool/common/process.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace unipool {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::vector<char*> ParseFlags(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  // --help lists the program's own flags (Abseil's default matches only a
  // source file named after the program, which none of ours is); Abseil's
  // are under --helpfull.
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
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
  for (std::string& arg : rewritten) args.push_back(arg.data());
  return absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
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
