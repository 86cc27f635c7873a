// unipool-demo: the main job on a local cluster.
//
// Starts a directory and three pool nodes on loopback, then plays two
// inference engines sharing a KV cache the way vLLM's prefix caching does:
// a prompt is cut into 16-token blocks, each block's KV (Llama-3-8B: 32
// layers x 4 KiB per token = 2 MiB per block) is keyed by the hash of the
// whole prefix up to it, so equal prefixes have equal keys on any engine.
//   engine A  prefills eight conversations and stores their KV blocks;
//   engine B  serves follow-up turns and new requests: it asks the pool for
//             the longest cached prefix, fetches those blocks instead of
//             recomputing them, and stores what it computed.
// Engine B reads each cached prefix with one GetPrefix straight into its own
// KV blocks, allocated once and reused (the engine path the SDK recommends),
// and the demo prints that rate next to a memcpy of the same bytes timed in
// the same run: the limit of the same-host path. Every fetched block is
// checked byte for byte against its recomputation.
// Then the directory is killed (SIGKILL) and restarted, and engine B reads
// its pages again: nothing was lost.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/checksum.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/tools/local_cluster.h"

ABSL_FLAG(std::string, work_dir, "",
          "where the cluster keeps its database and logs "
          "(default: a fresh directory under /tmp)");
ABSL_FLAG(std::string, pool_size, "512MiB", "slab size of each of the three nodes");

namespace unipool {
namespace {

constexpr int kTokensPerBlock = 16;                                        // vLLM's block size
constexpr size_t kBytesPerTokenAllLayers = 32 * 4096;                      // Llama-3-8B, BF16
constexpr size_t kBlockBytes = kTokensPerBlock * kBytesPerTokenAllLayers;  // 2 MiB
static_assert(kBlockBytes == 2u << 20);

using Tokens = std::vector<uint32_t>;

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Tokens RandomTokens(uint64_t seed, int count) {
  Tokens t(count);
  for (int i = 0; i < count; ++i) t[i] = static_cast<uint32_t>(Mix(seed * 1000003 + i) % 128256);
  return t;
}

// Keys of the full blocks of a prompt: each is the hash of the whole prefix
// up to and including that block (a chain, as in vLLM).
std::vector<std::string> BlockKeys(const Tokens& prompt) {
  std::vector<std::string> keys;
  uint64_t chain = 0x5eed;
  for (size_t b = 0; (b + 1) * kTokensPerBlock <= prompt.size(); ++b) {
    for (int i = 0; i < kTokensPerBlock; ++i) chain = Mix(chain ^ prompt[b * kTokensPerBlock + i]);
    keys.push_back(absl::StrFormat("llama3-8b/kv/%016x", chain));
  }
  return keys;
}

// "Prefill": the KV block an engine would compute. Deterministic in the key,
// so a block fetched from the pool can be checked against a recomputation.
std::vector<uint8_t> ComputeBlock(const std::string& key) {
  std::vector<uint8_t> block(kBlockBytes);
  uint64_t state = Checksum({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  for (size_t i = 0; i < block.size(); i += 8) {
    state = Mix(state);
    std::memcpy(&block[i], &state, 8);
  }
  return block;
}

struct Engine {
  std::string name;
  std::unique_ptr<Client> client;
  uint64_t blocks_reused = 0, blocks_computed = 0, bytes_fetched = 0;
  absl::Duration fetch_time, memcpy_time;
  // The same, without the first request that read from the pool: its reads
  // map the slab's pages into this process for the first time.
  uint64_t later_bytes = 0;
  absl::Duration later_fetch_time, later_memcpy_time;
  // The engine's KV memory, block by block, allocated once and reused by
  // every request (what an engine registers with the pool), and as much
  // memory again for timing a memcpy of the same bytes.
  std::vector<std::vector<uint8_t>> kv, copied;

  // The first `blocks` KV blocks, grown (and faulted in) as needed.
  std::vector<std::span<uint8_t>> Blocks(size_t blocks) {
    while (kv.size() < blocks) {
      kv.emplace_back(kBlockBytes, 0);
      copied.emplace_back(kBlockBytes, 0);
    }
    return {kv.begin(), kv.begin() + static_cast<std::ptrdiff_t>(blocks)};
  }

  // Serves one prompt the way the SDK recommends: one GetPrefix reads the
  // longest cached prefix straight into the engine's KV blocks; the rest is
  // computed and stored. Returns false on any error (printed).
  bool Serve(const std::string& label, const Tokens& prompt) {
    std::vector<std::string> keys = BlockKeys(prompt);
    std::vector<std::string_view> views(keys.begin(), keys.end());
    std::vector<std::span<uint8_t>> blocks = Blocks(keys.size());

    absl::Time start = absl::Now();
    absl::StatusOr<size_t> prefix = client->GetPrefix(views, blocks);
    absl::Duration took = absl::Now() - start;
    if (!prefix.ok()) return Fail(prefix.status());
    const size_t hit = *prefix;
    // The limit of the same-host path: a memcpy of the same bytes between
    // memory that is already mapped, timed right after.
    start = absl::Now();
    for (size_t i = 0; i < hit; ++i) std::memcpy(copied[i].data(), kv[i].data(), kBlockBytes);
    absl::Duration copy = absl::Now() - start;
    for (size_t i = 0; i < hit; ++i) {
      std::vector<uint8_t> want = ComputeBlock(keys[i]);
      if (std::memcmp(kv[i].data(), want.data(), kBlockBytes) != 0) {
        std::printf("  %s: block %zu differs from its recomputation!\n", name.c_str(), i);
        return false;
      }
    }
    std::vector<std::vector<uint8_t>> computed;
    for (size_t i = hit; i < keys.size(); ++i) computed.push_back(ComputeBlock(keys[i]));
    std::vector<std::span<const uint8_t>> values(computed.begin(), computed.end());
    auto stored = client->BatchPut(std::span(views).subspan(hit), values);
    for (const auto& s : stored) {
      // Another engine may have stored the same prefix meanwhile: fine.
      if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) return Fail(s);
    }
    blocks_reused += hit;
    blocks_computed += keys.size() - hit;
    if (bytes_fetched > 0) {
      later_bytes += hit * kBlockBytes;
      later_fetch_time += took;
      later_memcpy_time += copy;
    }
    bytes_fetched += hit * kBlockBytes;
    fetch_time += took;
    memcpy_time += copy;
    std::printf(
        "  %-8s %-30s %5zu tokens: %3zu of %3zu blocks from the pool (%s in %.1f ms), "
        "%3zu computed and stored\n",
        name.c_str(), label.c_str(), prompt.size(), hit, keys.size(),
        FormatSize(hit * kBlockBytes).c_str(), absl::ToDoubleMilliseconds(took), keys.size() - hit);
    return true;
  }

  bool Fail(const absl::Status& s) {
    std::printf("  %s: error: %s\n", name.c_str(), s.ToString().c_str());
    return false;
  }
};

Tokens Concat(const Tokens& a, const Tokens& b) {
  Tokens t = a;
  t.insert(t.end(), b.begin(), b.end());
  return t;
}

void PrintPool(Client& client) {
  auto state = Admin(client).State();
  if (!state.ok()) return;
  std::printf("  pool: %s used of %s, %llu objects\n", FormatSize(state->used).c_str(),
              FormatSize(state->capacity).c_str(), static_cast<unsigned long long>(state->objects));
  for (const auto& n : state->nodes) {
    std::printf("    %-6s %-16s %-4s %9s used of %9s, %4llu objects\n", n.name.c_str(),
                n.data_address.c_str(), n.up ? "up" : "down", FormatSize(n.used).c_str(),
                FormatSize(n.capacity).c_str(), static_cast<unsigned long long>(n.objects));
  }
}

int Run() {
  auto pool_size = ParseSize(absl::GetFlag(FLAGS_pool_size));
  if (!pool_size.ok()) {
    std::fprintf(stderr, "unipool-demo: --pool-size: %s\n",
                 std::string(pool_size.status().message()).c_str());
    return 2;
  }
  LocalClusterOptions options;
  options.nodes = 3;
  options.pool_size = *pool_size;
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (options.work_dir.empty()) {
    options.work_dir =
        (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-demo-%d", getpid()))
            .string();
  }
  std::printf(
      "Starting a local cluster: 1 directory + 3 nodes of %s on loopback "
      "(logs in %s)\n",
      FormatSize(*pool_size).c_str(), options.work_dir.c_str());
  auto cluster = LocalCluster::Start(options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "unipool-demo: %s\n", std::string(cluster.status().message()).c_str());
    return 1;
  }
  std::printf("  directory at %s\n\n", (*cluster)->directory_address().c_str());

  auto connect = [&](const std::string& name) -> std::unique_ptr<Client> {
    ClientOptions client_options;
    client_options.directory = (*cluster)->directory_address();
    client_options.name = name;
    auto client = Client::Connect(client_options);
    return client.ok() ? std::move(*client) : nullptr;
  };
  Engine a{"engine-A", connect("engine-A")};
  Engine b{"engine-B", connect("engine-B")};
  if (a.client == nullptr || b.client == nullptr) {
    std::fprintf(stderr, "unipool-demo: cannot connect to the directory\n");
    return 1;
  }

  Tokens system_prompt = RandomTokens(1, 1024);  // shared by every request
  std::vector<Tokens> conversations;
  for (int c = 0; c < 8; ++c) {
    conversations.push_back(Concat(system_prompt, RandomTokens(100 + c, 256 + 96 * c)));
  }
  std::printf(
      "Engine A prefills 8 conversations (1024-token system prompt + user turn) and "
      "stores their KV blocks (%s each):\n",
      FormatSize(kBlockBytes).c_str());
  for (int c = 0; c < 8; ++c) {
    if (!a.Serve(absl::StrFormat("conversation %d, turn 1", c), conversations[c])) return 1;
  }
  std::printf(
      "\nEngine B serves turn 2 of four conversations and two new users, "
      "reusing cached prefixes:\n");
  for (int c = 0; c < 4; ++c) {
    Tokens turn2 = Concat(conversations[c], RandomTokens(200 + c, 160));
    if (!b.Serve(absl::StrFormat("conversation %d, turn 2", c), turn2)) return 1;
  }
  for (int u = 0; u < 2; ++u) {
    Tokens fresh = Concat(system_prompt, RandomTokens(300 + u, 400));
    if (!b.Serve(absl::StrFormat("new user %d", u), fresh)) return 1;
  }
  double hit_rate =
      100.0 * b.blocks_reused / std::max<uint64_t>(1, b.blocks_reused + b.blocks_computed);
  double pool_gbps = b.bytes_fetched / 1e9 / std::max(1e-9, absl::ToDoubleSeconds(b.fetch_time));
  double memcpy_gbps = b.bytes_fetched / 1e9 / std::max(1e-9, absl::ToDoubleSeconds(b.memcpy_time));
  std::printf(
      "\nEngine B reused %llu blocks (%s) and computed %llu: %.0f%% of its prefill "
      "came from the pool at %.2f GB/s (transport: %s, one GetPrefix per request into the "
      "engine's reused KV blocks, lookups included), %.2fx a memcpy of the same bytes "
      "(%.2f GB/s in this run).\n",
      static_cast<unsigned long long>(b.blocks_reused), FormatSize(b.bytes_fetched).c_str(),
      static_cast<unsigned long long>(b.blocks_computed), hit_rate, pool_gbps,
      b.client->stats().transport.c_str(), pool_gbps / std::max(1e-9, memcpy_gbps), memcpy_gbps);
  if (b.later_bytes > 0) {
    auto gbps = [](uint64_t bytes, absl::Duration d) {
      return bytes / 1e9 / std::max(1e-9, absl::ToDoubleSeconds(d));
    };
    double later = gbps(b.later_bytes, b.later_fetch_time);
    double later_memcpy = gbps(b.later_bytes, b.later_memcpy_time);
    std::printf(
        "After its first hit (whose reads map the slab's pages into engine B): %.2f GB/s, "
        "%.2fx memcpy (%.2f GB/s).\n",
        later, later / std::max(1e-9, later_memcpy), later_memcpy);
  }
  PrintPool(*b.client);

  std::printf("\nKilling the directory (SIGKILL) and restarting it on the same RocksDB...\n");
  if (!(*cluster)->KillDirectory().ok() || !(*cluster)->RestartDirectory().ok() ||
      !(*cluster)->WaitForNodesUp(3, absl::Seconds(30)).ok()) {
    std::fprintf(stderr, "unipool-demo: directory restart failed\n");
    return 1;
  }
  Engine again{"engine-B", connect("engine-B")};
  if (again.client == nullptr || !again.Serve("conversation 0, turn 2 again",
                                              Concat(conversations[0], RandomTokens(200, 160)))) {
    return 1;
  }
  PrintPool(*again.client);
  std::printf(
      "\nDone: every block fetched matched its recomputation byte for byte. Stopping "
      "the cluster.\n");
  return 0;
}

}  // namespace
}  // namespace unipool

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv, "unipool-demo [--pool-size 512MiB] [--work-dir DIR]");
  return unipool::Run();
}
