#include "unipool/testing/engine_workload.h"

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

namespace unipool::testing {
namespace {

constexpr uint64_t KiB = 1024;

size_t BlockSize(const std::string& key) { return PageSize(HashKey(key, 7), 64 * KiB, 256 * KiB); }

}  // namespace

WorkloadResult RunEngineWorkload(const LocalCluster& cluster, uint64_t working_set, int requests) {
  constexpr int kThreads = 4;
  constexpr int kBlocksPerChain = 8;
  const int kRequestsPerThread = requests;
  const int chains = static_cast<int>(working_set / (kBlocksPerChain * 160 * KiB));
  std::atomic<uint64_t> asked{0}, hit{0}, failed{0}, wrong{0};
  // The first failures, printed: what failed says more than how many.
  absl::Mutex mu;
  std::vector<std::string> first_failures;
  auto fail = [&](const std::string& what, const absl::Status& s) {
    ++failed;
    absl::MutexLock lock(&mu);
    if (first_failures.size() < 3) first_failures.push_back(absl::StrCat(what, ": ", s.ToString()));
  };
  auto engine = [&](int t) {
    auto client = ConnectTo(cluster, {.name = "engine"});
    if (!client.ok()) {
      failed += kRequestsPerThread;
      return;
    }
    std::mt19937_64 rng(t * 7919 + 1);
    for (int r = 0; r < kRequestsPerThread; ++r) {
      int chain = static_cast<int>(rng() % chains);
      std::vector<std::string> keys;
      for (int b = 0; b < kBlocksPerChain; ++b)
        keys.push_back(absl::StrFormat("c%d/b%d", chain, b));
      std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(256 * KiB));
      absl::StatusOr<size_t> n = (*client)->GetPrefix(keys, buffers);
      if (!n.ok()) {
        fail("GetPrefix", n.status());
        continue;
      }
      for (size_t i = 0; i < *n; ++i) {
        std::vector<uint8_t> want = PageBytes(keys[i], BlockSize(keys[i]));
        if (!std::equal(want.begin(), want.end(), buffers[i].begin())) ++wrong;
      }
      asked += keys.size();
      hit += *n;
      // The engine computes the rest and offers it to the pool.
      std::vector<std::string> put_keys(keys.begin() + *n, keys.end());
      std::vector<std::vector<uint8_t>> values;
      for (const std::string& k : put_keys) values.push_back(PageBytes(k, BlockSize(k)));
      for (const absl::Status& s : (*client)->BatchPut(put_keys, values, {.replace = true})) {
        if (!s.ok()) fail("BatchPut", s);
      }
      // And reads two blocks of another chain by themselves.
      int other = static_cast<int>(rng() % chains);
      std::vector<std::string> some = {absl::StrFormat("c%d/b0", other),
                                       absl::StrFormat("c%d/b1", other)};
      auto got = (*client)->BatchGet(some);
      for (size_t i = 0; i < got.size(); ++i) {
        if (got[i].ok()) {
          if (*got[i] != PageBytes(some[i], BlockSize(some[i]))) ++wrong;
        } else if (!absl::IsNotFound(got[i].status())) {
          fail("BatchGet", got[i].status());
        }
      }
    }
  };
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(engine, t);
  for (std::thread& t : threads) t.join();
  for (const std::string& f : first_failures) absl::PrintF("failed: %s\n", f);
  return {asked.load(), hit.load(), failed.load(), wrong.load(), absl::Now() - start};
}

}  // namespace unipool::testing
