// What only the same-host path does, for real: a directory and nodes as
// processes on this machine (LocalCluster), clients in this process. The
// node's own data path does no work for shared-memory gets and puts; a node
// that does not share its slab, or that went away, is not read through
// shared memory. (Its data path as such is the conformance suite's, in
// tests/conformance.)
#include <algorithm>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

namespace unipool {
namespace {

using ::unipool::testing::ConnectTo;
using ::unipool::testing::PageBytes;
using ::unipool::testing::StartTestCluster;
using ::unipool::testing::TestCluster;

TestCluster StartCluster(int nodes, std::vector<std::string> node_flags = {}) {
  LocalClusterOptions options;
  options.nodes = nodes;
  options.pool_size = 64ull << 20;
  options.node_flags = std::move(node_flags);
  options.node_flags.push_back("--rdma=off");
  auto cluster = StartTestCluster("shm", options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? std::move(*cluster) : nullptr;
}

std::unique_ptr<Client> Connect(const LocalCluster& cluster, bool shm) {
  ClientOptions options;
  options.name = shm ? "shm-test" : "tcp-test";
  options.rdma = RdmaPolicy::kOff;
  options.shm = shm;
  auto client = ConnectTo(cluster, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

bool Advertises(const NodeState& node, std::string_view transport) {
  return std::find(node.transports.begin(), node.transports.end(), transport) !=
         node.transports.end();
}

TEST(ShmTest, NodeDoesNoWorkForShmGetsAndPuts) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto shm = Connect(*cluster, true);
  auto tcp = Connect(*cluster, false);
  ASSERT_NE(shm, nullptr);
  ASSERT_NE(tcp, nullptr);
  constexpr size_t kSize = 1 << 20;
  auto page = PageBytes("shm/quiet", kSize);
  ASSERT_TRUE(shm->Put("shm/quiet", page).ok());
  for (int i = 0; i < 50; ++i) {
    auto got = shm->Get("shm/quiet");
    ASSERT_TRUE(got.ok() && *got == page) << i;
  }
  // One get over TCP; once a heartbeat shows it, the node's counters hold
  // everything it served before it too: that one read and nothing else.
  auto got = tcp->Get("shm/quiet");
  ASSERT_TRUE(got.ok() && *got == page);
  NodeState node;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto status = Admin(*tcp).State();
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_EQ(status->nodes.size(), 1u);
    node = status->nodes[0];
    if (node.counters.reads > 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(node.counters.reads, 1u) << "the node served shared-memory gets itself";
  EXPECT_EQ(node.counters.bytes_read, kSize);
  EXPECT_EQ(node.counters.writes, 0u) << "the node served a shared-memory put itself";
  EXPECT_EQ(shm->stats().shm_requests, 51u);  // one put, 50 gets
}

TEST(ShmTest, FallsBackToTcpWhenTheNodeDoesNotShare) {
  auto cluster = StartCluster(1, {"--shm=off"});
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster, true);
  ASSERT_NE(client, nullptr);
  auto page = PageBytes("shm/unshared", 300000);
  ASSERT_TRUE(client->Put("shm/unshared", page).ok());
  auto got = client->Get("shm/unshared");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == page);
  ClientStats stats = client->stats();
  EXPECT_EQ(stats.shm_requests, 0u);
  EXPECT_EQ(stats.tcp_requests, 2u);
  EXPECT_EQ(stats.transport, "tcp");
  auto status = Admin(*client).State();
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(Advertises(status->nodes[0], "shm"));
}

TEST(ShmTest, AMappingEndsWithItsNode) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster, true);
  ASSERT_NE(client, nullptr);
  auto page = PageBytes("shm/before", 123456);
  ASSERT_TRUE(client->Put("shm/before", page).ok());
  ASSERT_TRUE(client->Get("shm/before").ok());
  uint64_t shm_before = client->stats().shm_requests;

  // The client still maps the dead node's memory, with the page intact; it
  // must not read it from there (its cached location says the node is up).
  ASSERT_TRUE(cluster->KillNode(0).ok());  // reaped: the kernel closed its sockets
  auto lost = client->Get("shm/before");
  EXPECT_FALSE(lost.ok());
  EXPECT_EQ(client->stats().shm_requests, shm_before);

  // A restarted node (LocalCluster gives it a new port) has a new slab,
  // mapped afresh.
  ASSERT_TRUE(cluster->RestartNode(0).ok());
  ASSERT_TRUE(cluster->WaitForNodesUp(1, absl::Seconds(10)).ok());
  auto fresh = PageBytes("shm/after", 654321);
  ASSERT_TRUE(client->Put("shm/after", fresh).ok());
  auto got = client->Get("shm/after");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == fresh);
  EXPECT_EQ(client->stats().shm_requests, shm_before + 2);
}

}  // namespace
}  // namespace unipool
