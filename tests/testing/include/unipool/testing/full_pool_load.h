// Engine-like threads over a pool much smaller than their working set, for
// the tests of "a full pool waits, it does not fail" (issue 24 item 5)
// across a directory restart or failover: each request reads a chain of
// blocks with GetPrefix, puts the missing suffix with BatchPut (as an engine
// that computed it would) and reads two blocks of another chain with
// BatchGet; every byte read is checked. Each thread runs until it has
// served a few requests after the test's fault is over.
//
// Thread safety: FullPoolLoad is shared by the threads (atomics, a mutex).
#ifndef UNIPOOL_TESTING_FULL_POOL_LOAD_H_
#define UNIPOOL_TESTING_FULL_POOL_LOAD_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "unipool/client.h"
#include "unipool/testing/test_pages.h"

namespace unipool::testing {

// What the engines saw.
struct FullPoolLoad {
  static constexpr int kThreads = 4;
  static constexpr int kChainBlocks = 8;
  static constexpr int kRequestsAfterFault = 6;  // per thread

  // Chains of 8 blocks of 64-256 KiB (160 KiB on average) adding up to
  // `working_set` bytes.
  explicit FullPoolLoad(uint64_t working_set)
      : chains(static_cast<int>(working_set / (kChainBlocks * 160 * 1024))) {}

  const int chains;
  std::atomic<bool> fault_over{false};
  std::atomic<uint64_t> requests{0}, after_fault{0}, blocks_hit{0}, put_items{0}, put_waits{0},
      wrong{0};
  std::atomic<int64_t> longest_put_us{0};
  absl::Mutex mu;
  std::vector<std::string> failures ABSL_GUARDED_BY(mu);

  static size_t BlockSize(const std::string& key) {
    return PageSize(HashKey(key, 3), 64 * 1024, 256 * 1024);
  }
  static std::vector<std::string> Chain(int chain, int blocks) {
    std::vector<std::string> keys;
    for (int b = 0; b < blocks; ++b) keys.push_back(absl::StrFormat("chain%d/%d", chain, b));
    return keys;
  }
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

  // One engine request.
  void Request(Client& client, std::mt19937_64& rng) {
    std::vector<std::string> keys = Chain(static_cast<int>(rng() % chains), kChainBlocks);
    std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(256 * 1024));
    absl::StatusOr<size_t> hit = client.GetPrefix(keys, buffers);
    if (!hit.ok()) return Fail("GetPrefix", hit.status());
    for (size_t i = 0; i < *hit; ++i) {
      std::vector<uint8_t> want = PageBytes(keys[i], BlockSize(keys[i]));
      if (!std::equal(want.begin(), want.end(), buffers[i].begin())) ++wrong;
    }
    blocks_hit += *hit;
    std::vector<std::string> missing(keys.begin() + *hit, keys.end());
    std::vector<std::vector<uint8_t>> values;
    for (const std::string& k : missing) values.push_back(PageBytes(k, BlockSize(k)));
    absl::Time put_start = absl::Now();
    for (const absl::Status& s : client.BatchPut(missing, values, {.replace = true})) {
      if (!s.ok()) Fail("BatchPut", s);
    }
    PutTook(absl::Now() - put_start);
    put_items += missing.size();
    std::vector<std::string> some = Chain(static_cast<int>(rng() % chains), 2);
    std::vector<absl::StatusOr<std::vector<uint8_t>>> got = client.BatchGet(some);
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i].ok() && *got[i] != PageBytes(some[i], BlockSize(some[i]))) ++wrong;
      if (!got[i].ok() && !absl::IsNotFound(got[i].status())) Fail("BatchGet", got[i].status());
    }
    ++requests;
  }

  // Starts the engine threads, each with a client from `connect`; join them
  // after setting fault_over.
  using Connect = std::function<absl::StatusOr<std::unique_ptr<Client>>()>;
  std::vector<std::thread> Start(const Connect& connect) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([this, connect, t] {
        absl::StatusOr<std::unique_ptr<Client>> client = connect();
        if (!client.ok()) return Fail("connect", client.status());
        std::mt19937_64 rng(t * 7919 + 1);
        for (int mine_after = 0; mine_after < kRequestsAfterFault;) {
          Request(**client, rng);
          if (fault_over) ++mine_after, ++after_fault;
        }
        put_waits += (*client)->stats().pool_full_waits;
      });
    }
    return threads;
  }

  std::string Summary() const {
    return absl::StrFormat(
        "%u requests (%u after the fault), %u blocks hit, %u put, %u put items waited for room, "
        "longest put %s",
        requests.load(), after_fault.load(), blocks_hit.load(), put_items.load(), put_waits.load(),
        absl::FormatDuration(absl::Microseconds(longest_put_us.load())));
  }
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_FULL_POOL_LOAD_H_
