// unipool-batch-get: the C++ side of bench/python_bench.py. How fast does the
// C++ SDK's BatchGet read pages that are already in the pool into the
// caller's buffers? The Python benchmark puts the pages, then runs this and
// its own batch_get_into on the same keys, the same cluster and the same
// options in turn, so the two figures compare as a ratio.
//
//   unipool-batch-get DIRECTORY KEY_PREFIX COUNT SIZE ROUNDS SHM(0|1)
//
// Reads KEY_PREFIX0 .. KEY_PREFIX{COUNT-1} (SIZE bytes each) with one
// BatchGet per round after one untimed round, and prints the fastest round:
//   cpp seconds=0.0123 MBps=2600.0
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/client.h"

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s DIRECTORY KEY_PREFIX COUNT SIZE ROUNDS SHM(0|1)\n", argv[0]);
    return 2;
  }
  unipool::ClientOptions options;
  options.directory = argv[1];
  options.name = "batch-get-bench";
  options.shm = std::atoi(argv[6]) != 0;
  const int count = std::atoi(argv[3]);
  const size_t size = std::strtoull(argv[4], nullptr, 10);
  const int rounds = std::atoi(argv[5]);
  auto client = unipool::Client::Connect(options);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i) keys.push_back(absl::StrFormat("%s%d", argv[2], i));
  std::vector<std::vector<uint8_t>> pages(count, std::vector<uint8_t>(size));
  double best = 1e30;
  for (int round = 0; round <= rounds; ++round) {  // round 0 is untimed
    auto start = std::chrono::steady_clock::now();
    auto results = (*client)->BatchGet(keys, pages);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& r : results) {
      if (!r.ok()) {
        std::fprintf(stderr, "get: %s\n", r.status().ToString().c_str());
        return 1;
      }
    }
    if (round > 0 && seconds < best) best = seconds;
  }
  std::printf("cpp seconds=%.6f MBps=%.1f\n", best, count * size / best / (1 << 20));
  return 0;
}
