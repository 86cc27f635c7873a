#include "unipool/directory/metrics.h"

#include <algorithm>

namespace unipool {
namespace {

RequestCounts Minus(const RequestCounts& a, const RequestCounts& b) {
  return {a.puts - b.puts, a.hits - b.hits, a.misses - b.misses, a.removes - b.removes,
          a.evictions - b.evictions};
}

}  // namespace

DirectoryMetrics::DirectoryMetrics(int history_seconds, absl::Time start)
    : capacity_(std::max(1, history_seconds)),
      start_(start),
      ring_(static_cast<size_t>(capacity_)),
      last_closed_second_(absl::ToUnixSeconds(start) - 1) {}

void DirectoryMetrics::CountLookups(uint64_t hits, uint64_t misses) {
  if (hits != 0) hits_.fetch_add(hits, std::memory_order_relaxed);
  if (misses != 0) misses_.fetch_add(misses, std::memory_order_relaxed);
}

void DirectoryMetrics::CountPuts(uint64_t puts) {
  if (puts != 0) puts_.fetch_add(puts, std::memory_order_relaxed);
}

void DirectoryMetrics::CountRemoves(uint64_t removes) {
  if (removes != 0) removes_.fetch_add(removes, std::memory_order_relaxed);
}

void DirectoryMetrics::SetEvictionsTotal(uint64_t total) {
  uint64_t seen = evictions_.load(std::memory_order_relaxed);
  while (total > seen && !evictions_.compare_exchange_weak(seen, total)) {
  }
}

RequestCounts DirectoryMetrics::Totals() const {
  return {puts_.load(std::memory_order_relaxed), hits_.load(std::memory_order_relaxed),
          misses_.load(std::memory_order_relaxed), removes_.load(std::memory_order_relaxed),
          evictions_.load(std::memory_order_relaxed)};
}

void DirectoryMetrics::Sample(absl::Time now) {
  int64_t newest = absl::ToUnixSeconds(now) - 1;  // the latest second that has ended
  absl::MutexLock lock(&mu_);
  if (newest <= last_closed_second_) return;
  RequestCounts totals = Totals();
  RequestCounts delta = Minus(totals, at_last_close_);
  at_last_close_ = totals;
  // Seconds the ticker slept through had no sample of their own: zeros, and
  // the requests go to the latest second. Never more than the ring holds.
  int64_t first = std::max(last_closed_second_ + 1, newest - capacity_ + 1);
  for (int64_t second = first; second <= newest; ++second) {
    SecondCounts entry{second, second == newest ? delta : RequestCounts{}};
    if (size_ < ring_.size()) {
      ring_[(first_ + size_) % ring_.size()] = entry;
      ++size_;
    } else {
      ring_[first_] = entry;
      first_ = (first_ + 1) % ring_.size();
    }
  }
  last_closed_second_ = newest;
}

std::vector<SecondCounts> DirectoryMetrics::History(int seconds) const {
  absl::MutexLock lock(&mu_);
  size_t count = std::min(size_, static_cast<size_t>(std::max(0, seconds)));
  std::vector<SecondCounts> out;
  out.reserve(count);
  for (size_t i = size_ - count; i < size_; ++i) out.push_back(ring_[(first_ + i) % ring_.size()]);
  return out;
}

PoolMetrics DirectoryMetrics::Snapshot(int history_seconds, absl::Time now) const {
  PoolMetrics out;
  RequestCounts totals = Totals();
  out.uptime_ms =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(now - start_)));
  out.puts = totals.puts;
  out.hits = totals.hits;
  out.misses = totals.misses;
  out.removes = totals.removes;
  out.evictions = totals.evictions;
  // A second's counts fit 32 bits on the wire; saturate rather than wrap.
  auto u32 = [](uint64_t v) { return static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX)); };
  for (const SecondCounts& s : History(std::min(history_seconds, capacity_))) {
    out.history.push_back({s.unix_seconds, u32(s.counts.puts), u32(s.counts.hits),
                           u32(s.counts.misses), u32(s.counts.removes), u32(s.counts.evictions)});
  }
  return out;
}

}  // namespace unipool
