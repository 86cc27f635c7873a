// Question 3, single gets against one batch: 128 pages of 64 KiB read with
// 128 Get calls and with one BatchGet of 128, from a fresh client (every
// location looked up: "cold") and from the same client again ("warm";
// Redis has no locations to cache: "none"). Median of kRepeats. Output: one
// `single-vs-batch system=... cache=...` line per system and cache state.
#include <cstring>

#include "absl/strings/str_format.h"
#include "measure.h"
#include "peers.h"
#include "questions.h"

namespace unipool::bench {
namespace {

constexpr int kPages = 128;
constexpr uint64_t kSize = 64 << 10;
constexpr int kRepeats = 7;

void PrintLine(const std::string& system, const char* cache, const std::vector<double>& single,
               const std::vector<double>& batch) {
  double single_s = Percentile(single, 0.5), batch_s = Percentile(batch, 0.5);
  absl::PrintF(
      "single-vs-batch system=%s size=%u pages=%d cache=%s single_ms=%.3f batch_ms=%.3f "
      "speedup=%.2f\n",
      system.c_str(), kSize, kPages, cache, single_s * 1e3, batch_s * 1e3, single_s / batch_s);
  std::fflush(stdout);
}

// Seconds to read every key, one call per key or all in one call.
double TimeReads(System& system, std::span<const std::string_view> keys,
                 std::span<const std::span<uint8_t>> into, bool one_by_one) {
  auto begin = Clock::now();
  if (one_by_one) {
    for (size_t i = 0; i < keys.size(); ++i) {
      OkOrDie(system.Get(0, keys.subspan(i, 1), into.subspan(i, 1)), system.name() + " get");
    }
  } else {
    OkOrDie(system.Get(0, keys, into), system.name() + " batch get");
  }
  return SecondsSince(begin);
}

}  // namespace

int RunSingleVsBatch() {
  Peers peers(kPages * kSize * 4);
  ThreadPages data = MakePages(0, kSize, kPages, kPages);
  std::vector<std::string> keys;
  for (int i = 0; i < kPages; ++i) keys.push_back(absl::StrFormat("svb/%d", i));
  std::vector<std::string_view> k(keys.begin(), keys.end());
  std::vector<std::span<const uint8_t>> values;
  for (int i = 0; i < kPages; ++i) values.push_back(data.page(i));
  std::vector<std::span<uint8_t>> into;
  for (auto& o : data.out) into.emplace_back(o);
  for (const auto& open : peers.Contenders()) {
    std::unique_ptr<System> writer = open();
    OkOrDie(writer->Put(0, k, values), "put");
    // A system that caches locations is read cold by a fresh client, then
    // warm; one that does not is read by the writer's own connection.
    const bool caches = writer->caches_locations();
    std::vector<double> cold_single, cold_batch, warm_single, warm_batch;
    std::string label = Label(*writer);
    for (int r = 0; r < kRepeats; ++r) {
      std::unique_ptr<System> c = caches ? open() : nullptr;
      System& singles = caches ? *c : *writer;
      cold_single.push_back(TimeReads(singles, k, into, true));
      if (caches) warm_single.push_back(TimeReads(singles, k, into, true));
      std::unique_ptr<System> d = caches ? open() : nullptr;
      System& batches = caches ? *d : *writer;
      cold_batch.push_back(TimeReads(batches, k, into, false));
      if (caches) warm_batch.push_back(TimeReads(batches, k, into, false));
      label = Label(batches);
    }
    for (int i = 0; i < kPages; ++i) {
      if (std::memcmp(into[i].data(), values[i].data(), kSize) != 0) {
        Fail(label + ": single-vs-batch: wrong bytes");
      }
    }
    if (caches) {
      PrintLine(label, "cold", cold_single, cold_batch);
      PrintLine(label, "warm", warm_single, warm_batch);
    } else {
      PrintLine(label, "none", cold_single, cold_batch);
    }
    OkOrDie(writer->Remove(0, k), "remove");
  }
  return 0;
}

}  // namespace unipool::bench
