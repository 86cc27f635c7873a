// A directory's election alone in a process, for the fencing test: it
// campaigns and prints on stdout, one line each, with CLOCK_MONOTONIC
// nanoseconds (the same clock for every process of the machine):
//   elected TERM NS          when it becomes leader
//   acking TERM NS           when LeaderTerm() first answers TERM
//   acked TERM FIRST LAST    when it stops acknowledging: the first and last
//                            times LeaderTerm() answered TERM (checked every ms)
//   deposed TERM NS WHY      when the election says it stopped leading
// Usage: election_candidate ETCD_URL ADDRESS TTL_SECONDS
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "unipool/election/leader_election.h"

namespace {

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: election_candidate ETCD_URL ADDRESS TTL_SECONDS\n");
    return 2;
  }
  auto etcd = unipool::EtcdClient::Create({.endpoints = {argv[1]}});
  if (!etcd.ok()) {
    std::fprintf(stderr, "%s\n", etcd.status().ToString().c_str());
    return 1;
  }
  unipool::ElectionOptions options;
  options.pool = "fencing";
  options.address = argv[2];
  options.lease_ttl = absl::Seconds(std::atoi(argv[3]));
  options.renew_interval = absl::Milliseconds(300);
  options.safety_margin = absl::Milliseconds(500);
  options.on_elected = [](int64_t term) {
    Say("elected " + std::to_string(term) + " " + std::to_string(MonotonicNanos()));
  };
  options.on_deposed = [](int64_t term, std::string_view why) {
    Say("deposed " + std::to_string(term) + " " + std::to_string(MonotonicNanos()) + " " +
        std::string(why));
  };
  auto election = unipool::LeaderElection::Start(etcd->get(), options);
  if (!election.ok()) {
    std::fprintf(stderr, "%s\n", election.status().ToString().c_str());
    return 1;
  }
  // What a directory would do before each acknowledgement, every millisecond.
  int64_t term = 0, first = 0, last = 0;
  while (true) {
    std::optional<int64_t> now_term = (*election)->LeaderTerm();
    int64_t now = MonotonicNanos();
    if (now_term.has_value() && *now_term == term) {
      last = now;
    } else {
      if (term != 0) {
        Say("acked " + std::to_string(term) + " " + std::to_string(first) + " " +
            std::to_string(last));
      }
      term = now_term.value_or(0);
      first = last = now;
      if (term != 0) Say("acking " + std::to_string(term) + " " + std::to_string(now));
    }
    timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
}
