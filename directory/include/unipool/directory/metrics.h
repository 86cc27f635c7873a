// What the directory has served: request counters since it started and a
// ring of per-second counts over the last minutes, for `unipoolctl status`,
// the dashboard's charts and /metrics.
//
//   gets = keys looked up (a client's Get, Stat or BatchGet item): a hit when
//          the key was found, a miss when not. Hit rate = hits / gets.
//   puts = objects committed. removes = keys removed. evictions = objects the
//          directory evicted (fed from the directory's own total).
//
// Thread safety: thread-safe. Counting is a relaxed atomic add, cheap enough
// for every request; the history is behind a mutex taken once a second.
#ifndef UNIPOOL_DIRECTORY_METRICS_H_
#define UNIPOOL_DIRECTORY_METRICS_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

struct RequestCounts {
  uint64_t puts = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t removes = 0;
  uint64_t evictions = 0;
};

// The requests of one whole second.
struct SecondCounts {
  int64_t unix_seconds = 0;
  RequestCounts counts;
};

class DirectoryMetrics {
 public:
  // Seconds of history kept. Default 600: the dashboard charts ten minutes.
  static constexpr int kDefaultHistorySeconds = 600;

  explicit DirectoryMetrics(int history_seconds = kDefaultHistorySeconds,
                            absl::Time start = absl::Now());
  DirectoryMetrics(const DirectoryMetrics&) = delete;
  DirectoryMetrics& operator=(const DirectoryMetrics&) = delete;

  void CountLookups(uint64_t hits, uint64_t misses);
  void CountPuts(uint64_t puts);
  void CountRemoves(uint64_t removes);
  // The directory's running total of evictions (it only grows).
  void SetEvictionsTotal(uint64_t total);

  RequestCounts Totals() const;
  absl::Time start() const { return start_; }

  // Closes every whole second that ended by `now` into the history: the
  // requests counted since the last call go to the latest closed second.
  // Call a few times a second (the directory's tick does).
  void Sample(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // The latest `seconds` closed seconds, oldest first; fewer when the
  // directory is younger. Seconds without requests are present, with zeros.
  std::vector<SecondCounts> History(int seconds) const ABSL_LOCKS_EXCLUDED(mu_);

  // The totals, the uptime at `now` and the latest `history_seconds` (at most
  // the history kept) as the pool type that GetMetrics answers and the
  // dashboard renders.
  PoolMetrics Snapshot(int history_seconds, absl::Time now = absl::Now()) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const int capacity_;
  const absl::Time start_;
  std::atomic<uint64_t> puts_{0}, hits_{0}, misses_{0}, removes_{0}, evictions_{0};

  mutable absl::Mutex mu_;
  // Ring of closed seconds; ring_[(first_ + i) % capacity_] is the i-th oldest.
  std::vector<SecondCounts> ring_ ABSL_GUARDED_BY(mu_);
  size_t first_ ABSL_GUARDED_BY(mu_) = 0;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_closed_second_ ABSL_GUARDED_BY(mu_);
  RequestCounts at_last_close_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_METRICS_H_
