// A full pool waits, it does not fail (issue 24 item 5), with real directory
// and node processes on loopback: engine-like threads (FullPoolLoad) over a
// pool a third of their working set, while the directory is SIGKILLed and
// restarted. The restarted directory cannot see the read leases it handed
// out, so it counts every object as leased for one lease: puts then find
// nothing to evict and must wait for room (the directory's retry hint, the
// SDK's pool_full_wait) instead of failing. Counts are asserted; the longest
// put is printed, never asserted. tests/ha/full_pool_failover_test does the
// same across a failover.
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/full_pool_load.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

constexpr uint64_t kPool = 16ull << 20;

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

  testing::FullPoolLoad load(3 * kPool);
  std::vector<std::thread> engines =
      load.Start([&] { return testing::ConnectTo(**cluster, {.name = "engine"}); });
  // Full: from now on every put evicts, or waits.
  bool full = testing::WaitUntil([&] {
    absl::StatusOr<PoolState> pool = (*admin)->State();
    return pool.ok() && pool->evictions > 0;
  });
  EXPECT_TRUE(full) << "the working set never filled the pool";
  absl::Time killed = absl::Now();
  EXPECT_TRUE((*cluster)->KillDirectory().ok());
  EXPECT_TRUE((*cluster)->RestartDirectory().ok());
  load.fault_over = true;
  absl::PrintF("directory killed and back in %s\n", absl::FormatDuration(absl::Now() - killed));
  for (std::thread& t : engines) t.join();

  absl::PrintF("full pool across a directory restart: %s\n", load.Summary());
  absl::MutexLock lock(&load.mu);
  for (size_t i = 0; i < load.failures.size() && i < 5; ++i) ADD_FAILURE() << load.failures[i];
  EXPECT_EQ(load.failures.size(), 0u);
  EXPECT_EQ(load.wrong, 0u);
  EXPECT_GT(load.put_waits, 0u) << "no put had to wait: the restart's grace was not exercised";
}

}  // namespace
}  // namespace unipool
