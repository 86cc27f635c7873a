#include "transports.h"

#include <algorithm>

#include "absl/strings/str_replace.h"
#include "unipool/testing/test_pages.h"

namespace unipool::testing {

TransportSetup TcpTransport() {
  TransportSetup setup;
  setup.name = "tcp";
  setup.node_flags = {"--rdma=off"};
  // The nodes are on this machine: without shm=false the client would map
  // their slabs.
  setup.client.shm = false;
  setup.client.rdma = RdmaPolicy::kOff;
  setup.pool_size = 640ull << 20;  // 1.9 GiB in all; the workload is ~1.1 GiB
  setup.page_size = [](int index) { return PageSize(index, 4 << 10, 8 << 20); };
  return setup;
}

TransportSetup ShmTransport() {
  TransportSetup setup = TcpTransport();
  setup.name = "shm";
  setup.client.shm = true;
  return setup;
}

TransportSetup RdmaTransport(const std::string& mode) {
  TransportSetup setup;
  setup.name = "rdma-" + mode;
  setup.client.rdma = mode == "uc" ? RdmaPolicy::kUC : RdmaPolicy::kRC;
  setup.client.io_timeout = absl::Seconds(120);
  setup.node_timeout = absl::Seconds(10);  // TCG is slow; heartbeats may lag
  setup.pool_size = 160ull << 20;
  setup.slow = true;
  setup.threads = 3;
  setup.pages_per_thread = 334;
  // Mixed 4 KiB .. 8 MiB, weighted the way KV caches are: mostly small
  // pages, some large blocks (keeps the run near 200 MB for a TCG VM).
  setup.page_size = [](int index) -> size_t {
    uint64_t r = Mix(index + 12345);
    int bucket = static_cast<int>(r % 100);
    if (bucket < 80) return PageSize(index, 4 << 10, 64 << 10);
    if (bucket < 95) return PageSize(index, 64 << 10, 1 << 20);
    return PageSize(index, 1 << 20, 8 << 20);
  };
  return setup;
}

void ExpectServedBy(const TransportSetup& setup, const ClientStats& stats) {
  EXPECT_EQ(stats.transport, setup.name);
  if (setup.name == "tcp") {
    EXPECT_EQ(stats.shm_requests, 0u);
  } else if (setup.name == "shm") {
    EXPECT_GT(stats.shm_requests, 0u);
    EXPECT_EQ(stats.tcp_requests, 0u);
    EXPECT_EQ(stats.checksum_failures, 0u);
  } else {
    EXPECT_GT(stats.rdma_requests, 0u);
    EXPECT_EQ(stats.tcp_requests, 0u);
  }
  if (setup.lossy) {
    EXPECT_GT(stats.rdma_retries, 0u) << "injected losses were not retried";
  }
}

void ExpectAdvertised(const TransportSetup& setup, const PoolState& pool) {
  for (const NodeState& node : pool.nodes) {
    EXPECT_NE(std::find(node.transports.begin(), node.transports.end(), setup.name),
              node.transports.end())
        << node.name << " does not advertise " << setup.name;
  }
}

std::string TransportTestName(const ::testing::TestParamInfo<TransportSetup>& info) {
  return absl::StrReplaceAll(info.param.name, {{"-", "_"}});
}

void PrintTo(const TransportSetup& setup, std::ostream* out) { *out << setup.name; }

}  // namespace unipool::testing
