// An engine-like workload over a real cluster (issue 25): four threads, each
// asking for chains of 8 blocks of 64-256 KiB with GetPrefix, putting the
// missing suffix with BatchPut (as an engine that computed it would) and
// reading two blocks of another chain with BatchGet. The chains add up to
// `working_set` bytes: a pool smaller than that hits only part of them.
// Every block read is checked byte for byte. Used by flash_tier_test and
// bench/flash_tier_bench.cc.
#ifndef UNIPOOL_TESTING_ENGINE_WORKLOAD_H_
#define UNIPOOL_TESTING_ENGINE_WORKLOAD_H_

#include <cstdint>

#include "absl/time/time.h"
#include "unipool/tools/local_cluster.h"

namespace unipool::testing {

struct WorkloadResult {
  uint64_t blocks_asked = 0;  // blocks GetPrefix asked for
  uint64_t blocks_hit = 0;    // ... and found
  uint64_t failed = 0;        // requests that failed (a miss is not a failure)
  uint64_t wrong = 0;         // blocks read with wrong bytes
  absl::Duration elapsed;     // the whole run, all threads

  double hit_rate() const {
    return blocks_asked == 0 ? 0.0 : static_cast<double>(blocks_hit) / blocks_asked;
  }
  double blocks_per_second() const {
    return elapsed <= absl::ZeroDuration() ? 0.0 : blocks_asked / absl::ToDoubleSeconds(elapsed);
  }
};

// Runs the workload (`requests` per thread) and prints its first failures.
WorkloadResult RunEngineWorkload(const LocalCluster& cluster, uint64_t working_set,
                                 int requests = 60);

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_ENGINE_WORKLOAD_H_
