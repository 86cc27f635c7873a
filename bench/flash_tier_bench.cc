// unipool-flash-tier-bench: what does a node's flash tier add to an engine's
// prefix hits when memory is 4x smaller than the working set (flash 8x
// memory), and what does a get cost when its page is on flash (read back
// into memory on the way) against one already in memory? All in one run:
//   1. the engine workload (tests/testing/engine_workload.h: 4 threads of
//      GetPrefix, BatchPut and BatchGet of 64-256 KiB blocks) on a cluster
//      without flash, then on one with it: hit rate and blocks/s;
//   2. on a quiet cluster with flash: single gets of 256 KiB pages on flash
//      only (each a promotion), then of the same pages in memory; and a
//      GetPrefix of 16 pages, half in memory and half on flash, against the
//      same 16 all in memory.
// Results: bench/RESULTS.md and bench/results/flash.md.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/testing/engine_workload.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

ABSL_FLAG(std::string, pool, "64MiB", "memory of the one node (the working set is 4x, flash 8x)");
ABSL_FLAG(int, requests, 60, "GetPrefix requests per engine thread");
ABSL_FLAG(int, pages, 32, "pages timed one by one (and rounds of the 16-page prefix)");

namespace unipool {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr size_t kPage = 256 * KiB;

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << "unipool-flash-tier-bench: " << what << "\n";
  std::exit(1);
}
template <typename T>
T OrDie(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(what + ": " + value.status().ToString());
  return std::move(*value);
}
void OkOrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

std::string LoadAverage() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return "unknown";
  return absl::StrFormat("%.2f %.2f %.2f", load[0], load[1], load[2]);
}

std::unique_ptr<LocalCluster> StartCluster(const std::filesystem::path& work, uint64_t pool,
                                           uint64_t flash, const std::string& lease) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = pool;
  options.work_dir = (work / "cluster").string();
  std::filesystem::remove_all(options.work_dir);
  options.directory_flags = {"--lease=" + lease, "--sync=everysec"};
  options.node_flags = {"--rdma=off"};
  if (flash > 0) {
    std::filesystem::remove_all(work / "ssd");
    options.node_flags.push_back("--ssd-dir=" + (work / "ssd").string());
    options.node_flags.push_back(absl::StrFormat("--ssd-size=%u", flash));
  }
  return OrDie(LocalCluster::Start(options), "starting a cluster");
}

NodeState Node(Admin& admin) {
  PoolState state = OrDie(admin.State(), "status");
  if (state.nodes.empty()) Fail("the cluster has no node");
  return state.nodes[0];
}

// Waits until the directory records `objects` objects on flash.
void WaitFlashed(Admin& admin, uint64_t objects) {
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Node(admin).flash.objects < objects) {
    if (absl::Now() > deadline) Fail("pages were not written behind to flash within 60 s");
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void EvictAll(Admin& admin, const std::string& prefix, uint64_t expected) {
  uint64_t total = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (total < expected) {
    total += OrDie(admin.Evict(prefix), "evict");
    if (absl::Now() > deadline) Fail("could not evict " + prefix);
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

double TimeMs(const std::function<void()>& fn) {
  absl::Time start = absl::Now();
  fn();
  return absl::ToDoubleMilliseconds(absl::Now() - start);
}

std::vector<uint8_t> GetOrDie(Client& client, const std::string& key) {
  std::vector<uint8_t> bytes = OrDie(client.Get(key), "get " + key);
  if (bytes != testing::PageBytes(key, kPage)) Fail("wrong bytes for " + key);
  return bytes;
}

void WorkloadRows(const std::filesystem::path& work, uint64_t pool) {
  testing::WorkloadResult runs[2];
  NodeState with_node;
  for (int flash = 0; flash < 2; ++flash) {
    auto cluster = StartCluster(work, pool, flash ? 8 * pool : 0, "50ms");
    runs[flash] = testing::RunEngineWorkload(*cluster, 4 * pool, absl::GetFlag(FLAGS_requests));
    if (runs[flash].failed > 0 || runs[flash].wrong > 0) {
      Fail(absl::StrFormat("the workload had %u failed requests, %u wrong blocks",
                           runs[flash].failed, runs[flash].wrong));
    }
    if (flash) {
      auto client = OrDie(testing::ConnectTo(*cluster, {.name = "bench"}), "connect");
      Admin admin(*client);
      with_node = Node(admin);
    }
  }
  absl::PrintF("| engine workload (4 threads, pool %s, working set 4x) | hit rate | blocks/s |\n",
               FormatSize(pool));
  absl::PrintF("|---|---|---|\n");
  absl::PrintF("| memory only | %.3f | %.0f |\n", runs[0].hit_rate(), runs[0].blocks_per_second());
  absl::PrintF("| with flash of %s (%u demoted, %u read back) | %.3f | %.0f |\n\n",
               FormatSize(8 * pool), with_node.flash.demotions, with_node.flash.promotions,
               runs[1].hit_rate(), runs[1].blocks_per_second());
}

void LatencyRows(const std::filesystem::path& work) {
  auto cluster = StartCluster(work, 64 * MiB, 256 * MiB, "0s");
  auto client = OrDie(testing::ConnectTo(*cluster, {.name = "bench"}), "connect");
  Admin admin(*client);
  const int pages = absl::GetFlag(FLAGS_pages);
  std::vector<std::string> keys;
  for (int i = 0; i < pages; ++i) {
    keys.push_back(absl::StrFormat("single/%03d", i));
    OkOrDie(client->Put(keys.back(), testing::PageBytes(keys.back(), kPage)), "put");
  }
  std::vector<std::string> prefix;
  for (int i = 0; i < 16; ++i) {
    prefix.push_back(absl::StrFormat("prefix/%s%02d", i < 8 ? "a" : "b", i));
    OkOrDie(client->Put(prefix.back(), testing::PageBytes(prefix.back(), kPage)), "put");
  }
  WaitFlashed(admin, keys.size() + prefix.size());
  EvictAll(admin, "single/", keys.size());
  std::vector<double> from_flash, from_memory;
  for (const std::string& key : keys) from_flash.push_back(TimeMs([&] { GetOrDie(*client, key); }));
  for (const std::string& key : keys)
    from_memory.push_back(TimeMs([&] { GetOrDie(*client, key); }));
  std::vector<double> half, whole, batch_half;
  std::vector<std::vector<uint8_t>> buffers(prefix.size(), std::vector<uint8_t>(kPage));
  auto get_prefix = [&] {
    size_t n = OrDie(client->GetPrefix(prefix, buffers), "GetPrefix");
    if (n != prefix.size()) Fail("GetPrefix missed part of the prefix");
  };
  auto batch_get = [&] {
    for (const auto& page : client->BatchGet(prefix)) OkOrDie(page.status(), "BatchGet");
  };
  for (int round = 0; round < pages; ++round) {
    // The second half on flash only; then read by GetPrefix (both tiers at
    // once), or by BatchGet (read back into memory first, then read).
    EvictAll(admin, "prefix/b", 8);
    half.push_back(TimeMs(get_prefix));
    whole.push_back(TimeMs(get_prefix));
    EvictAll(admin, "prefix/b", 8);
    batch_half.push_back(TimeMs(batch_get));
  }
  absl::PrintF("| get of a %s page | median ms | p90 ms |\n|---|---|---|\n", FormatSize(kPage));
  absl::PrintF("| in memory | %.2f | %.2f |\n", Median(from_memory), Percentile(from_memory, 0.9));
  absl::PrintF("| on flash (read back on the way) | %.2f | %.2f |\n", Median(from_flash),
               Percentile(from_flash, 0.9));
  absl::PrintF("| GetPrefix of 16, all in memory | %.2f | %.2f |\n", Median(whole),
               Percentile(whole, 0.9));
  absl::PrintF("| GetPrefix of 16, the last 8 on flash (both tiers at once) | %.2f | %.2f |\n",
               Median(half), Percentile(half, 0.9));
  absl::PrintF("| BatchGet of the same 16 (flash half read back first) | %.2f | %.2f |\n",
               Median(batch_half), Percentile(batch_half, 0.9));
}

}  // namespace
}  // namespace unipool

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-flash-tier-bench [--pool 64MiB] [--requests 60] [--pages 32]");
  uint64_t pool = unipool::OrDie(unipool::ParseSize(absl::GetFlag(FLAGS_pool)), "--pool");
  std::filesystem::path work = std::filesystem::temp_directory_path() /
                               absl::StrFormat("unipool-flash-tier-bench-%d", getpid());
  std::string load0 = unipool::LoadAverage();
  unipool::WorkloadRows(work, pool);
  unipool::LatencyRows(work);
  absl::PrintF("\nload average %s before, %s after\n", load0, unipool::LoadAverage());
  std::filesystem::remove_all(work);
  return 0;
}
