// Faults under an engine-like workload, with real directory and node
// processes on loopback (LocalCluster): 4 threads each serve "requests" of a
// prefix of KV pages (64-256 KiB): BatchExists, BatchGet of what is there,
// BatchPut of what is not (recomputed), over 3 nodes, while
//   (a) a node is SIGKILLed: no put fails (re-placed), gets are hits, misses
//       or Unavailable, never another error;
//   (b) the directory is SIGKILLed and restarted: no request fails;
//   (c) with replicas=2, a node is SIGKILLed, re-replication runs, then a
//       second node is SIGKILLed: every object is still readable.
// Zero wrong bytes throughout. Counts are asserted; times (how fast the node
// was marked down, the longest stall) are printed, never asserted.

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using ::unipool::testing::PageBytes;
using ::unipool::testing::PageSize;

constexpr uint64_t KiB = 1024;
constexpr int kThreads = 4;
constexpr int kPagesPerRequest = 8;
// Distinct prompts: few enough that requests share prefixes (hits), many
// enough that puts go on through each fault.
constexpr int kPrompts = 150;

size_t SizeOf(const std::string& key) {
  return PageSize(testing::HashKey(key, 1), 64 * KiB, 256 * KiB);
}

// What the workload saw, by outcome.
struct Counts {
  std::atomic<uint64_t> requests{0}, puts_ok{0}, puts_failed{0}, gets_ok{0}, gets_missed{0},
      gets_unavailable{0}, errors{0}, wrong_bytes{0};
  std::mutex mu;
  std::set<std::string> put_keys;  // every key a put stored
  std::vector<std::string> error_lines;
  std::atomic<int64_t> longest_call_us{0};

  void Error(const std::string& what) {
    errors.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu);
    if (error_lines.size() < 10) error_lines.push_back(what);
  }
  void Took(absl::Duration d) {
    int64_t us = absl::ToInt64Microseconds(d);
    int64_t seen = longest_call_us.load();
    while (us > seen && !longest_call_us.compare_exchange_weak(seen, us)) {
    }
  }
};

class Workload {
 public:
  Workload(Client* client, int replicas, Counts* counts)
      : client_(client), replicas_(replicas), counts_(counts) {}
  ~Workload() { Stop(); }

  void Start() {
    for (int t = 0; t < kThreads; ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Run(int thread) {
    uint64_t state = testing::Mix(thread + 1);
    while (!stop_.load()) {
      state = testing::Mix(state);
      Request(state % kPrompts);
    }
  }

  // One engine request: which pages of the prompt's prefix are there, read
  // them, and put the others.
  void Request(uint64_t prompt) {
    counts_->requests.fetch_add(1);
    std::vector<std::string> keys;
    for (int i = 0; i < kPagesPerRequest; ++i) {
      keys.push_back(absl::StrFormat("fault/p%u/%d", prompt, i));
    }
    std::vector<std::string_view> views(keys.begin(), keys.end());
    absl::Time start = absl::Now();
    std::vector<absl::StatusOr<bool>> exists = client_->BatchExists(views);
    counts_->Took(absl::Now() - start);
    std::vector<std::string_view> present, absent;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!exists[i].ok()) {
        counts_->Error("exists " + keys[i] + ": " + exists[i].status().ToString());
      } else {
        (*exists[i] ? present : absent).push_back(views[i]);
      }
    }
    Get(present, absent);
    Put(absent);
  }

  void Get(std::span<const std::string_view> keys, std::vector<std::string_view>& absent) {
    if (keys.empty()) return;
    absl::Time start = absl::Now();
    auto got = client_->BatchGet(keys);
    counts_->Took(absl::Now() - start);
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string key(keys[i]);
      if (got[i].ok()) {
        counts_->gets_ok.fetch_add(1);
        if (*got[i] != PageBytes(key, SizeOf(key))) counts_->wrong_bytes.fetch_add(1);
      } else if (absl::IsNotFound(got[i].status())) {
        counts_->gets_missed.fetch_add(1);
        absent.push_back(keys[i]);  // recompute it
      } else if (absl::IsUnavailable(got[i].status())) {
        counts_->gets_unavailable.fetch_add(1);
      } else {
        counts_->Error("get " + key + ": " + got[i].status().ToString());
      }
    }
  }

  void Put(std::span<const std::string_view> keys) {
    if (keys.empty()) return;
    std::vector<std::vector<uint8_t>> pages;
    std::vector<std::span<const uint8_t>> values;
    for (std::string_view key : keys) pages.push_back(PageBytes(key, SizeOf(std::string(key))));
    for (const auto& page : pages) values.emplace_back(page);
    PutOptions options;
    options.replicas = replicas_;
    absl::Time start = absl::Now();
    std::vector<absl::Status> put = client_->BatchPut(keys, values, options);
    counts_->Took(absl::Now() - start);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (put[i].ok()) {
        counts_->puts_ok.fetch_add(1);
        std::lock_guard<std::mutex> lock(counts_->mu);
        counts_->put_keys.insert(std::string(keys[i]));
      } else if (!absl::IsAlreadyExists(put[i])) {  // another thread's put won
        counts_->puts_failed.fetch_add(1);
        counts_->Error("put " + std::string(keys[i]) + ": " + put[i].ToString());
      }
    }
  }

  Client* const client_;
  const int replicas_;
  Counts* const counts_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class FaultWorkloadTest : public testing::ClusterTest {
 protected:
  void StartFaultCluster(std::vector<std::string> directory_flags) {
    LocalClusterOptions options;
    // Room for every page twice on two nodes: nothing is evicted, so every
    // page put must stay readable.
    options.pool_size = 512ull << 20;
    // Long: a dead node must be found by the clients' reports and the
    // directory's probe, not by its silence.
    options.node_timeout = absl::Seconds(30);
    options.directory_flags = std::move(directory_flags);
    options.directory_flags.push_back("--sync=everysec");
    options.node_flags = {"--rdma=off"};
    // With a cluster key, as deployed: the directory's probes must prove it too.
    ASSERT_NO_FATAL_FAILURE(StartCluster("faults", options, testing::TestAuth::kClusterKey));
    ClientOptions client_options;
    client_options.name = "fault-workload";
    // Remote engines: page bytes over TCP (a same-host client could still
    // read a killed node's slab through its mapping).
    client_options.shm = false;
    client_options.rdma = RdmaPolicy::kOff;
    ASSERT_NO_FATAL_FAILURE(ConnectClient(client_options));
  }

  // Polls the pool state until `done(state)` (bounded); returns whether it held.
  template <typename Fn>
  bool WaitForState(Fn done) {
    return testing::WaitUntil([&] {
      auto state = admin_->State();
      return state.ok() && done(*state);
    });
  }
  bool NodeUp(const PoolState& state, int i) {
    for (const NodeState& n : state.nodes) {
      if (n.name == cluster_->node_name(i)) return n.up;
    }
    return false;
  }
  // Runs the workload until it has served `requests` more requests.
  void RunFor(Counts& counts, uint64_t requests) {
    uint64_t until = counts.requests.load() + requests;
    testing::WaitUntil([&] { return counts.requests.load() >= until; }, absl::Seconds(120),
                       absl::Milliseconds(5));
    ASSERT_GE(counts.requests.load(), until) << "the workload stopped making progress";
  }
  // Starts the workload and lets it warm up; the stall is measured from here.
  void StartWorkload(Workload& workload, Counts& counts) {
    workload.Start();
    RunFor(counts, 200);
    counts.longest_call_us.store(0);
  }
  // No put failed, no error of another kind than a miss or Unavailable, no
  // wrong byte.
  static void ExpectNoFailure(const Counts& counts) {
    EXPECT_EQ(counts.puts_failed.load(), 0u);
    EXPECT_EQ(counts.errors.load(), 0u);
    EXPECT_EQ(counts.wrong_bytes.load(), 0u);
  }
  void Report(const char* fault, Counts& counts) {
    std::printf(
        "%s: %lu requests, %lu puts ok, %lu failed; gets %lu ok, %lu missed, %lu unavailable; "
        "%lu other errors, %lu wrong bytes; longest call %.1f ms\n",
        fault, counts.requests.load(), counts.puts_ok.load(), counts.puts_failed.load(),
        counts.gets_ok.load(), counts.gets_missed.load(), counts.gets_unavailable.load(),
        counts.errors.load(), counts.wrong_bytes.load(), counts.longest_call_us.load() / 1000.0);
    for (const std::string& line : counts.error_lines) std::printf("  %s\n", line.c_str());
  }
};

TEST_F(FaultWorkloadTest, NodeKilledPutsArePlacedAgainAndGetsNeverFailOddly) {
  ASSERT_NO_FATAL_FAILURE(StartFaultCluster({}));
  Counts counts;
  Workload workload(client_.get(), 1, &counts);
  StartWorkload(workload, counts);
  absl::Time killed = absl::Now();
  ASSERT_TRUE(cluster_->KillNode(1).ok());
  bool down = WaitForState([&](const PoolState& s) { return !NodeUp(s, 1); });
  absl::Duration to_down = absl::Now() - killed;
  RunFor(counts, 300);
  workload.Stop();
  ASSERT_TRUE(down) << "the directory never marked the killed node down";
  std::printf("node killed: marked down after %.0f ms (node timeout 30 s)\n",
              absl::ToDoubleMilliseconds(to_down));
  Report("node killed", counts);
  ExpectNoFailure(counts);
  EXPECT_GT(counts.puts_ok.load(), 0u);
  EXPECT_GT(counts.gets_ok.load(), 0u);
}

TEST_F(FaultWorkloadTest, DirectoryRestartFailsNoRequest) {
  ASSERT_NO_FATAL_FAILURE(StartFaultCluster({}));
  Counts counts;
  Workload workload(client_.get(), 1, &counts);
  StartWorkload(workload, counts);
  ASSERT_TRUE(cluster_->KillDirectory().ok());
  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  ASSERT_TRUE(WaitForState([&](const PoolState& s) {
    return std::count_if(s.nodes.begin(), s.nodes.end(), [](auto& n) { return n.up; }) == 3;
  })) << "the nodes did not register again";
  RunFor(counts, 300);
  workload.Stop();
  Report("directory restarted", counts);
  ExpectNoFailure(counts);
  EXPECT_EQ(counts.gets_unavailable.load(), 0u);
}

TEST_F(FaultWorkloadTest, ReplicasSurviveTwoNodeLossesOnceReReplicated) {
  ASSERT_NO_FATAL_FAILURE(StartFaultCluster({"--rereplicate_after=500ms"}));
  Counts counts;
  Workload workload(client_.get(), 2, &counts);
  StartWorkload(workload, counts);
  ASSERT_TRUE(cluster_->KillNode(0).ok());
  RunFor(counts, 200);
  workload.Stop();
  // Re-replication has run when no object has a copy on a node not up.
  absl::Time killed = absl::Now();
  uint64_t made = 0;
  ASSERT_TRUE(WaitForState([&](const PoolState& s) {
    made = s.copies_rereplicated;
    return !NodeUp(s, 0) && s.under_replicated == 0;
  })) << "re-replication did not finish";
  std::printf("re-replication: %lu copies made, done %.0f ms after the workload stopped\n", made,
              absl::ToDoubleMilliseconds(absl::Now() - killed));
  EXPECT_GT(made, 0u);
  auto before = admin_->State();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->evictions, 0u) << "the pool was too small for the workload";
  ASSERT_TRUE(cluster_->KillNode(1).ok());
  Report("replicas=2, node killed", counts);
  ExpectNoFailure(counts);

  // Every object put is readable from the last node, with its bytes.
  std::vector<std::string> keys(counts.put_keys.begin(), counts.put_keys.end());
  ASSERT_FALSE(keys.empty());
  uint64_t read = 0, wrong = 0;
  for (size_t first = 0; first < keys.size(); first += 64) {
    std::vector<std::string_view> batch(keys.begin() + first,
                                        keys.begin() + std::min(keys.size(), first + 64));
    auto got = client_->BatchGet(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      std::string key(batch[i]);
      ASSERT_TRUE(got[i].ok()) << key << ": " << got[i].status();
      ++read;
      if (*got[i] != PageBytes(key, SizeOf(key))) ++wrong;
    }
  }
  std::printf("after the second node loss: %lu of %zu objects read back\n", read, keys.size());
  EXPECT_EQ(wrong, 0u);
}

}  // namespace
}  // namespace unipool
