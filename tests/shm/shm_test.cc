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

// A batch's pages copied by several threads come back exactly as one
// thread copies them: the same bytes, in order, with the same per-key
// errors (a missing key, a bad key, a buffer too small) in the same places.
TEST(ShmTest, ParallelCopiesGiveWhatOneThreadGives) {
  auto cluster = StartCluster(1);
  ASSERT_NE(cluster, nullptr);
  auto connect = [&](int copy_threads) {
    ClientOptions options;
    options.name = absl::StrFormat("copy-threads-%d", copy_threads);
    options.rdma = RdmaPolicy::kOff;
    options.copy_threads = copy_threads;
    auto client = ConnectTo(*cluster, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  };
  auto one = connect(1);
  auto four = connect(4);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(four, nullptr);
  constexpr size_t kPages = 48;
  constexpr size_t kSize = 64 << 10;  // 3 MiB a batch: over CopyThreads::kParallelFromBytes
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> pages;
  for (size_t i = 0; i < kPages; ++i) {
    keys.push_back(absl::StrFormat("copy/%u", i));
    pages.push_back(PageBytes(keys.back(), kSize + i * 4096));
  }
  // Put by the parallel client: every page must read back whole.
  for (const absl::Status& s : four->BatchPut(keys, pages)) ASSERT_TRUE(s.ok()) << s;
  keys[7] = "copy/never-put";
  keys[20] = "";  // invalid
  std::vector<std::string_view> asked(keys.begin(), keys.end());
  auto read = [&](Client& client, std::vector<std::vector<uint8_t>>& into) {
    into.assign(kPages, {});
    for (size_t i = 0; i < kPages; ++i) into[i].resize(i == 30 ? kSize : kSize + i * 4096);
    std::vector<std::span<uint8_t>> spans(into.begin(), into.end());
    return client.BatchGet(asked, spans);
  };
  std::vector<std::vector<uint8_t>> by_one, by_four;
  auto got_one = read(*one, by_one);
  auto got_four = read(*four, by_four);
  ASSERT_EQ(got_one.size(), kPages);
  ASSERT_EQ(got_four.size(), kPages);
  for (size_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(got_one[i].status().code(), got_four[i].status().code()) << i;
    if (i == 7) {
      EXPECT_TRUE(absl::IsNotFound(got_four[i].status())) << got_four[i].status();
    }
    if (i == 20 || i == 30) {
      EXPECT_TRUE(absl::IsInvalidArgument(got_four[i].status())) << i;
    }
    if (!got_four[i].ok()) continue;
    EXPECT_EQ(*got_one[i], *got_four[i]) << i;
    EXPECT_TRUE(by_four[i] == pages[i]) << "page " << i << " differs when copied in parallel";
    EXPECT_TRUE(by_one[i] == by_four[i]) << i;
  }
  EXPECT_GT(four->stats().shm_requests, 0u);
}

}  // namespace
}  // namespace unipool
