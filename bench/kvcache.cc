// Question 2, the KV-cache prefix hit: engine A stores a prompt prefix's KV
// cache (Llama-3-8B and -70B shapes, in the page layouts of vLLM, SGLang and
// LMCache) and engine B, a fresh client, finds it (exists) and loads it into
// its paged KV memory. How long do the store and the hit take, per
// transport and on Redis? Output: one `kvcache model=... system=...` line
// per model x layout x system.
#include <algorithm>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "measure.h"
#include "peers.h"
#include "questions.h"

ABSL_FLAG(int, prefix_tokens, 2048, "--kvcache: tokens in the shared prompt prefix");

namespace unipool::bench {
namespace {

struct Model {
  const char* name;
  int layers;
};
constexpr Model kModels[] = {{"llama3-8b", 32}, {"llama3-70b", 80}};
// BF16, 8 KV heads x head dim 128: K and V, 2 bytes each.
constexpr uint64_t kBytesPerTokenPerLayer = 2 * 8 * 128 * 2;
static_assert(kBytesPerTokenPerLayer == 4096);

struct Layout {
  const char* name;
  int tokens;       // per page
  bool all_layers;  // a page holds every layer (else one layer)
};
constexpr Layout kLayouts[] = {{"vllm-layer", 16, false},
                               {"sglang-layer", 64, false},
                               {"vllm-block", 16, true},
                               {"lmcache-chunk", 256, true}};
// Pages per call, as an engine loading a prefix layer by layer would.
constexpr size_t kKvBatch = 128;

void PrintKv(const Model& m, const Layout& l, uint64_t page, uint64_t pages,
             const std::string& system, double put_s, double hit_s) {
  double bytes = static_cast<double>(page) * pages;
  absl::PrintF(
      "kvcache model=%s layout=%s page=%u pages=%u prefix_tokens=%d system=%s put_ms=%.2f "
      "hit_ms=%.2f put_GBps=%.3f hit_GBps=%.3f\n",
      m.name, l.name, page, pages, absl::GetFlag(FLAGS_prefix_tokens), system.c_str(), put_s * 1e3,
      hit_s * 1e3, bytes / put_s / 1e9, bytes / hit_s / 1e9);
  std::fflush(stdout);
}

// One prefix of `data` through one system: A stores it in calls of
// kKvBatch pages, B (fresh) checks it exists and loads it into `kv_memory`,
// every byte is compared, A removes it.
void StoreAndHit(const Model& m, const Layout& l, const ThreadPages& data,
                 const std::vector<std::string>& keys,
                 const std::function<std::unique_ptr<System>()>& open,
                 std::vector<uint8_t>& kv_memory) {
  const uint64_t page = data.size;
  const size_t pages = keys.size();
  std::vector<std::string_view> k(keys.begin(), keys.end());
  std::unique_ptr<System> engine_a = open();
  auto begin = Clock::now();
  for (size_t i = 0; i < pages; i += kKvBatch) {
    size_t n = std::min(kKvBatch, pages - i);
    std::vector<std::span<const uint8_t>> values;
    for (size_t j = i; j < i + n; ++j) values.push_back(data.page(j));
    OkOrDie(engine_a->Put(0, {k.data() + i, n}, values), "kvcache put");
  }
  double put_s = SecondsSince(begin);
  std::unique_ptr<System> engine_b = open();  // no cached locations
  begin = Clock::now();
  if (OrDie(engine_b->CountExisting(k), "kvcache exists") != static_cast<int64_t>(pages)) {
    Fail(engine_b->name() + ": prefix not found");
  }
  for (size_t i = 0; i < pages; i += kKvBatch) {
    size_t n = std::min(kKvBatch, pages - i);
    std::vector<std::span<uint8_t>> into;
    for (size_t j = i; j < i + n; ++j) into.emplace_back(kv_memory.data() + j * page, page);
    OkOrDie(engine_b->Get(0, {k.data() + i, n}, into), "kvcache get");
  }
  double hit_s = SecondsSince(begin);
  std::string label = Label(*engine_b);
  if (std::memcmp(kv_memory.data(), data.source.data(), kv_memory.size()) != 0) {
    Fail(label + ": the loaded prefix differs from what was stored");
  }
  std::fill(kv_memory.begin(), kv_memory.end(), 0);
  PrintKv(m, l, page, pages, label, put_s, hit_s);
  OkOrDie(engine_a->Remove(0, k), "kvcache remove");
}

}  // namespace

int RunKvCache() {
  const int tokens = absl::GetFlag(FLAGS_prefix_tokens);
  uint64_t biggest = 0;
  for (const Model& m : kModels) {
    biggest = std::max<uint64_t>(biggest, kBytesPerTokenPerLayer * tokens * m.layers);
  }
  Peers peers(biggest);
  uint64_t run = 0;
  for (const Model& m : kModels) {
    for (const Layout& l : kLayouts) {
      uint64_t page = kBytesPerTokenPerLayer * l.tokens * (l.all_layers ? m.layers : 1);
      uint64_t pages = static_cast<uint64_t>(tokens / l.tokens) * (l.all_layers ? 1 : m.layers);
      if (pages == 0) continue;
      ThreadPages data =
          MakePages(0, page, pages, static_cast<int>(std::min<uint64_t>(pages, kKvBatch)));
      // The engine's destination: its paged KV memory, one slot per page.
      std::vector<uint8_t> kv_memory(page * pages);
      for (const auto& open : peers.Contenders()) {
        ++run;
        std::vector<std::string> keys;
        for (uint64_t i = 0; i < pages; ++i) {
          keys.push_back(absl::StrFormat("%s/%s/prefix-%u/%u", m.name, l.name, run, i));
        }
        StoreAndHit(m, l, data, keys, open, kv_memory);
      }
    }
  }
  return 0;
}

}  // namespace unipool::bench
