// A full pool waits, it does not fail (issue 24 item 5), with real directory
// and node processes on loopback: four engine-like threads (GetPrefix of a
// chain of blocks, BatchPut of the missing suffix, BatchGet of two blocks of
// another chain) over a pool a third of their working set, while the
// directory is SIGKILLed and restarted. The restarted directory cannot see
// the read leases it handed out, so it counts every object as leased for
// one lease: puts then find nothing to evict and must wait for room (the
// directory's retry hint, the SDK's pool_full_wait) instead of failing.
// Counts are asserted; the longest put is printed, never asserted.
#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t kPool = 16 * MiB;
constexpr int kThreads = 4;
constexpr int kChainBlocks = 8;
// 3x the pool in chains of 8 blocks of 160 KiB on average.
constexpr int kChains = static_cast<int>(3 * kPool / (kChainBlocks * 160 * KiB));

size_t BlockSize(const std::string& key) {
  return testing::PageSize(testing::HashKey(key, 3), 64 * KiB, 256 * KiB);
}
std::vector<std::string> Chain(int chain, int first, int end) {
  std::vector<std::string> keys;
  for (int b = first; b < end; ++b) keys.push_back(absl::StrFormat("chain%d/%d", chain, b));
  return keys;
}

// What the engines saw.
struct Seen {
  std::atomic<uint64_t> requests{0}, blocks_hit{0}, put_items{0}, put_waits{0}, wrong{0};
  std::atomic<int64_t> longest_put_us{0};
  absl::Mutex mu;
  std::vector<std::string> failures ABSL_GUARDED_BY(mu);

  void Fail(const std::string& what, const absl::Status& s) {
    absl::MutexLock lock(&mu);
    failures.push_back(absl::StrFormat("%s: %s", what, s.ToString()));
  }
  void PutTook(absl::Duration d) {
    int64_t us = absl::ToInt64Microseconds(d);
    for (int64_t seen = longest_put_us; seen < us;) {
      if (longest_put_us.compare_exchange_weak(seen, us)) break;
    }
  }
};

// One engine request: the chain's cached prefix, the rest computed and put,
// two blocks of another chain read by themselves. Every byte read checked.
void Request(Client& client, std::mt19937_64& rng, Seen& seen) {
  int chain = static_cast<int>(rng() % kChains);
  std::vector<std::string> keys = Chain(chain, 0, kChainBlocks);
  std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(256 * KiB));
  absl::StatusOr<size_t> hit = client.GetPrefix(keys, buffers);
  if (!hit.ok()) return seen.Fail("GetPrefix", hit.status());
  for (size_t i = 0; i < *hit; ++i) {
    std::vector<uint8_t> want = testing::PageBytes(keys[i], BlockSize(keys[i]));
    if (!std::equal(want.begin(), want.end(), buffers[i].begin())) ++seen.wrong;
  }
  seen.blocks_hit += *hit;
  std::vector<std::string> missing(keys.begin() + *hit, keys.end());
  std::vector<std::vector<uint8_t>> values;
  for (const std::string& k : missing) values.push_back(testing::PageBytes(k, BlockSize(k)));
  absl::Time put_start = absl::Now();
  for (const absl::Status& s : client.BatchPut(missing, values, {.replace = true})) {
    if (!s.ok()) seen.Fail("BatchPut", s);
  }
  seen.PutTook(absl::Now() - put_start);
  seen.put_items += missing.size();
  int other = static_cast<int>(rng() % kChains);
  std::vector<std::string> some = Chain(other, 0, 2);
  std::vector<absl::StatusOr<std::vector<uint8_t>>> got = client.BatchGet(some);
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].ok() && *got[i] != testing::PageBytes(some[i], BlockSize(some[i]))) ++seen.wrong;
    if (!got[i].ok() && !absl::IsNotFound(got[i].status())) seen.Fail("BatchGet", got[i].status());
  }
  ++seen.requests;
}

TEST(FullPoolRestartTest, PutsWaitOutARestartedDirectorysLeasesAndNoneFails) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = kPool;
  // A short lease keeps the test short: the restart's grace is one lease.
  options.directory_flags = {"--lease=3s"};
  auto cluster = testing::StartTestCluster("full_pool_restart", options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto admin = Admin::Connect({.directory = (*cluster)->directory_address()});
  ASSERT_TRUE(admin.ok()) << admin.status();

  Seen seen;
  std::atomic<bool> restarted{false};
  std::atomic<int> after_restart{0};  // requests finished since
  auto engine = [&](int t) {
    auto client = testing::ConnectTo(**cluster, {.name = "engine"});
    if (!client.ok()) return seen.Fail("connect", client.status());
    std::mt19937_64 rng(t * 7919 + 1);
    // Until each engine has served a few requests after the restart.
    for (int mine_after = 0; mine_after < 6;) {
      Request(**client, rng, seen);
      if (restarted) ++mine_after, ++after_restart;
    }
    seen.put_waits += (*client)->stats().pool_full_waits;
  };
  std::vector<std::thread> engines;
  for (int t = 0; t < kThreads; ++t) engines.emplace_back(engine, t);

  // Full: from now on every put evicts, or waits.
  bool full = testing::WaitUntil([&] {
    absl::StatusOr<PoolState> pool = (*admin)->State();
    return pool.ok() && pool->evictions > 0;
  });
  EXPECT_TRUE(full) << "the working set never filled the pool";
  absl::Time killed = absl::Now();
  EXPECT_TRUE((*cluster)->KillDirectory().ok());
  EXPECT_TRUE((*cluster)->RestartDirectory().ok());
  restarted = true;
  absl::PrintF("directory killed and back in %s\n", absl::FormatDuration(absl::Now() - killed));
  for (std::thread& t : engines) t.join();

  absl::PrintF(
      "full pool across a directory restart: %u requests (%d after it), %u blocks hit, %u put, "
      "%u put items waited for room, longest put %s\n",
      seen.requests.load(), after_restart.load(), seen.blocks_hit.load(), seen.put_items.load(),
      seen.put_waits.load(), absl::FormatDuration(absl::Microseconds(seen.longest_put_us.load())));
  absl::MutexLock lock(&seen.mu);
  for (size_t i = 0; i < std::min<size_t>(seen.failures.size(), 5); ++i) {
    ADD_FAILURE() << seen.failures[i];
  }
  EXPECT_EQ(seen.failures.size(), 0u);
  EXPECT_EQ(seen.wrong, 0u);
  EXPECT_GT(seen.put_waits, 0u) << "no put had to wait: the restart's grace was not exercised";
}

}  // namespace
}  // namespace unipool
