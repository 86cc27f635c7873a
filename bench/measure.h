// What every benchmark question shares for measuring: failing loudly, flag
// lists, timing calls on several threads, percentiles, the output line of a
// measurement, and the test pages with their checks.
//
// Thread safety: RunThreads runs its body on several threads at once; the
// rest are plain functions and values.
#ifndef UNIPOOL_BENCH_MEASURE_H_
#define UNIPOOL_BENCH_MEASURE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace unipool::bench {

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point since);

// Prints "unipool-bench: <what>" and exits 1 (a benchmark that cannot do
// what it was asked measures nothing).
[[noreturn]] void Fail(const std::string& what);
template <typename T>
T OrDie(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(what + ": " + value.status().ToString());
  return std::move(*value);
}
void OkOrDie(const absl::Status& s, const std::string& what);

// Comma-separated flag values; a bad item fails naming --flag.
std::vector<std::string> SplitList(const std::string& text);
std::vector<uint64_t> SizeList(const std::string& text, const char* flag);
std::vector<int> IntList(const std::string& text, const char* flag);

// One measurement: calls of `batch` pages of `size` bytes by `threads`
// threads; latency per call.
struct Result {
  double seconds = 0;
  uint64_t pages = 0;
  uint64_t bytes = 0;
  std::vector<double> call_us;
  uint64_t directory_requests = 0;
};

double Percentile(std::vector<double> v, double p);

// The line bench/report.py and tests/rdma_vm/verbs-vs-perftest.sh read:
//   unipool op=get size=65536 batch=16 transport=shm MBps=61.2 ops=979 threads=1 GBps=0.064 ...
void Print(const std::string& system, const std::string& op, uint64_t size, int batch,
           const std::string& transport, int threads, const Result& r);

// Runs body(thread, call) for calls [0, calls) on each of `threads` threads
// at once and times each call. A failing call ends the program.
Result RunThreads(int threads, int calls, uint64_t pages_per_call, uint64_t size,
                  const std::function<absl::Status(int thread, int call)>& body);

// The faster of two timed rounds of the same reads: on a machine shared
// with other work, a round that other processes slowed down says little
// about the system measured.
Result Best(Result a, Result b);

// Pages of one thread for one page size: distinct contents (a per-page
// header over a shared random pattern), and the buffers a batch is read
// into.
struct ThreadPages {
  std::vector<uint8_t> source;  // page i at i * size
  std::vector<std::vector<uint8_t>> out;
  uint64_t size = 0;

  std::span<const uint8_t> page(size_t i) const { return {source.data() + i * size, size}; }
};
ThreadPages MakePages(int thread, uint64_t size, uint64_t pages, int max_batch);

// A cheap check of a timed read (an untimed round checks every byte).
bool LooksRight(std::span<const uint8_t> got, std::span<const uint8_t> want);

}  // namespace unipool::bench

#endif  // UNIPOOL_BENCH_MEASURE_H_
