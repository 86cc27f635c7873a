// The same-host path for real: a directory and nodes as processes on this
// machine (LocalCluster), clients in this process. Pages written and read
// through the mapped slab match byte for byte and agree with TCP; stats say
// shm served them; the node's own data path does no work for them; a node
// that does not share its slab, or that went away, is not read through
// shared memory.
#include <algorithm>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/integration/test_pages.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using ::unipool::testing::PageBytes;

std::string WorkDir() {
  auto dir =
      std::filesystem::temp_directory_path() /
      absl::StrFormat("unipool-shm-%s-%d",
                      ::testing::UnitTest::GetInstance()->current_test_info()->name(), getpid());
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::unique_ptr<LocalCluster> StartCluster(int nodes, std::vector<std::string> node_flags = {}) {
  LocalClusterOptions options;
  options.nodes = nodes;
  options.pool_size = 64ull << 20;
  options.work_dir = WorkDir();
  options.node_flags = std::move(node_flags);
  options.node_flags.push_back("--rdma=off");
  auto cluster = LocalCluster::Start(options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? std::move(*cluster) : nullptr;
}

std::unique_ptr<Client> Connect(const LocalCluster& cluster, bool shm) {
  ClientOptions options;
  options.directory = cluster.directory_address();
  options.name = shm ? "shm-test" : "tcp-test";
  options.rdma = RdmaPolicy::kOff;
  options.shm = shm;
  auto client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

// Sizes from 1 byte to 3 MiB, odd ones included.
size_t SizeOf(int i) {
  static constexpr size_t kSizes[] = {1, 4096, 4097, 65536, 100003, 262144, 2 << 20, 3 << 20};
  return kSizes[i % std::size(kSizes)];
}

std::string KeyOf(int i) { return absl::StrFormat("shm/%d", i); }

bool Advertises(const NodeState& node, std::string_view transport) {
  return std::find(node.transports.begin(), node.transports.end(), transport) !=
         node.transports.end();
}

TEST(ShmTest, PutsAndGetsMatchEveryByteAndAgreeWithTcp) {
  auto cluster = StartCluster(2);
  ASSERT_NE(cluster, nullptr);
  auto shm = Connect(*cluster, true);
  auto tcp = Connect(*cluster, false);
  ASSERT_NE(shm, nullptr);
  ASSERT_NE(tcp, nullptr);
  constexpr int kPages = 24;
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> pages;
  for (int i = 0; i < kPages; ++i) {
    keys.push_back(KeyOf(i));
    pages.push_back(PageBytes(keys.back(), SizeOf(i)));
  }
  // Half put one by one, half in one batch, all through shared memory.
  for (int i = 0; i < kPages / 2; ++i) ASSERT_TRUE(shm->Put(keys[i], pages[i]).ok()) << i;
  std::vector<std::string_view> batch_keys(keys.begin() + kPages / 2, keys.end());
  std::vector<std::span<const uint8_t>> batch_values(pages.begin() + kPages / 2, pages.end());
  for (const absl::Status& s : shm->BatchPut(batch_keys, batch_values)) ASSERT_TRUE(s.ok()) << s;

  // Read back three ways through shared memory, and over TCP.
  std::vector<std::string_view> all(keys.begin(), keys.end());
  for (int i = 0; i < kPages; ++i) {
    auto got = shm->Get(keys[i]);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == pages[i]) << keys[i];
  }
  auto vectors = shm->BatchGet(all);
  std::vector<std::vector<uint8_t>> buffers(kPages, std::vector<uint8_t>(3 << 20, 0xEE));
  std::vector<std::span<uint8_t>> into(buffers.begin(), buffers.end());
  auto sizes = shm->BatchGet(all, into);
  auto over_tcp = tcp->BatchGet(all);
  for (int i = 0; i < kPages; ++i) {
    ASSERT_TRUE(vectors[i].ok() && sizes[i].ok() && over_tcp[i].ok()) << keys[i];
    EXPECT_TRUE(*vectors[i] == pages[i]) << keys[i];
    ASSERT_EQ(*sizes[i], pages[i].size());
    EXPECT_TRUE(std::equal(pages[i].begin(), pages[i].end(), buffers[i].begin())) << keys[i];
    if (pages[i].size() < buffers[i].size()) {
      EXPECT_EQ(buffers[i][pages[i].size()], 0xEE) << "wrote past the object: " << keys[i];
    }
    EXPECT_TRUE(*over_tcp[i] == pages[i]) << keys[i];
  }
  // And the other way: what TCP writes, shared memory reads.
  auto tcp_page = PageBytes("shm/from-tcp", 777777);
  ASSERT_TRUE(tcp->Put("shm/from-tcp", tcp_page).ok());
  auto got = shm->Get("shm/from-tcp");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == tcp_page);

  ClientStats stats = shm->stats();
  EXPECT_EQ(stats.transport, "shm");
  EXPECT_GT(stats.shm_requests, 0u);
  EXPECT_EQ(stats.tcp_requests, 0u);
  EXPECT_EQ(stats.checksum_failures, 0u);
  EXPECT_EQ(tcp->stats().shm_requests, 0u);
  EXPECT_EQ(tcp->stats().transport, "tcp");
  auto status = Admin(*shm).State();
  ASSERT_TRUE(status.ok()) << status.status();
  for (const NodeState& node : status->nodes) EXPECT_TRUE(Advertises(node, "shm")) << node.name;
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
