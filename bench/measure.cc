#include "measure.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "unipool/common/units.h"

namespace unipool::bench {

double SecondsSince(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "unipool-bench: %s\n", what.c_str());
  std::fflush(stderr);
  std::exit(1);
}

void OkOrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    out.emplace_back(part.data(), part.size());
  }
  return out;
}

std::vector<uint64_t> SizeList(const std::string& text, const char* flag) {
  std::vector<uint64_t> out;
  for (const std::string& s : SplitList(text)) {
    out.push_back(OrDie(ParseSize(s), absl::StrFormat("--%s %s", flag, s)));
  }
  return out;
}

std::vector<int> IntList(const std::string& text, const char* flag) {
  std::vector<int> out;
  for (const std::string& s : SplitList(text)) {
    int v = std::atoi(s.c_str());
    if (v <= 0) Fail(absl::StrFormat("--%s: '%s' is not a positive number", flag, s));
    out.push_back(v);
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Print(const std::string& system, const std::string& op, uint64_t size, int batch,
           const std::string& transport, int threads, const Result& r) {
  double mib = static_cast<double>(r.bytes) / (1 << 20);
  absl::PrintF(
      "%s op=%s size=%u batch=%d transport=%s MBps=%.1f ops=%.0f threads=%d GBps=%.3f "
      "p50_us=%.1f p99_us=%.1f calls=%u directory_requests=%u\n",
      system.c_str(), op.c_str(), size, batch, transport.c_str(), mib / r.seconds,
      r.pages / r.seconds, threads, r.bytes / r.seconds / 1e9, Percentile(r.call_us, 0.50),
      Percentile(r.call_us, 0.99), r.call_us.size(), r.directory_requests);
  std::fflush(stdout);
}

Result RunThreads(int threads, int calls, uint64_t pages_per_call, uint64_t size,
                  const std::function<absl::Status(int thread, int call)>& body) {
  std::vector<std::vector<double>> lat(threads);
  std::latch start(threads);
  std::vector<std::thread> workers;
  std::vector<absl::Status> failed(threads);
  // The measurement runs from the first thread's start to the last one's end.
  std::vector<Clock::time_point> began(threads), ended(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      lat[t].reserve(calls);
      start.arrive_and_wait();
      began[t] = Clock::now();
      struct End {
        Clock::time_point* at;
        ~End() { *at = Clock::now(); }
      } end{&ended[t]};
      for (int c = 0; c < calls; ++c) {
        auto begin = Clock::now();
        absl::Status s = body(t, c);
        lat[t].push_back(SecondsSince(begin) * 1e6);
        if (!s.ok()) {
          failed[t] = s;
          return;
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  Result r;
  r.seconds = std::chrono::duration<double>(*std::max_element(ended.begin(), ended.end()) -
                                            *std::min_element(began.begin(), began.end()))
                  .count();
  for (int t = 0; t < threads; ++t) {
    OkOrDie(failed[t], absl::StrFormat("thread %d", t));
    r.call_us.insert(r.call_us.end(), lat[t].begin(), lat[t].end());
  }
  r.pages = static_cast<uint64_t>(threads) * calls * pages_per_call;
  r.bytes = r.pages * size;
  return r;
}

Result Best(Result a, Result b) { return a.seconds <= b.seconds ? a : b; }

ThreadPages MakePages(int thread, uint64_t size, uint64_t pages, int max_batch) {
  ThreadPages p;
  p.size = size;
  p.source.resize(pages * size);
  // A random pattern of 1 MiB + 8 bytes, repeated at shifting offsets.
  constexpr size_t kPattern = (1 << 20) + 8;
  std::vector<uint8_t> pattern(kPattern);
  uint64_t x = 0x9e3779b97f4a7c15ull * (thread + 1) ^ size;
  for (size_t i = 0; i + 8 <= kPattern; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&pattern[i], &x, 8);
  }
  for (uint64_t i = 0; i < pages; ++i) {
    uint8_t* page = p.source.data() + i * size;
    for (uint64_t done = 0; done < size;) {
      size_t from = (i * 7919 + done) % (kPattern - 8);
      size_t n = std::min<uint64_t>(size - done, kPattern - from);
      std::memcpy(page + done, &pattern[from], n);
      done += n;
    }
    uint64_t header[2] = {i, static_cast<uint64_t>(thread)};
    std::memcpy(page, header, std::min<uint64_t>(size, sizeof header));
  }
  p.out.assign(max_batch, std::vector<uint8_t>(size, 0));
  return p;
}

bool LooksRight(std::span<const uint8_t> got, std::span<const uint8_t> want) {
  size_t n = std::min<size_t>(16, want.size());
  return got.size() >= want.size() && std::memcmp(got.data(), want.data(), n) == 0 &&
         std::memcmp(got.data() + want.size() - n, want.data() + want.size() - n, n) == 0;
}

}  // namespace unipool::bench
