// The client's own logic above the transport: where puts go, which copy a
// get reads, what it does when a node fails or hands back damaged bytes.
// A real directory and nodes (LocalCluster) decide placement; page bytes
// move through a FakeNodeIo put under the client (ClientSeam), so each
// fault is scripted exactly and nothing is left to timing.
#include <memory>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/client/node_io_seam.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/fake_node_io.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

class ClientLogicTest : public ClusterTest {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 3;
    options.pool_size = 16 << 20;
    options.node_flags = {"--rdma=off", "--shm=off"};
    ASSERT_NO_FATAL_FAILURE(StartCluster("client-logic", options));
    ClientOptions client_options;
    client_options.directory = cluster_->directory_address();
    client_options.rdma = RdmaPolicy::kOff;
    client_options.shm = false;
    auto client = ClientSeam::Connect(client_options, &fake_);
    ASSERT_TRUE(client.ok()) << client.status();
    AdoptClient(std::move(*client));
  }

  // Puts `key` (64 KiB of its test page) with `replicas` copies and returns
  // the node holding the first copy.
  std::string PutPage(const std::string& key, int replicas = 1) {
    EXPECT_TRUE(client_->Put(key, PageBytes(key, 64 << 10), {.replicas = replicas}).ok());
    auto info = admin_->Stat(key);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() && !info->copies.empty() ? info->copies[0].node_address : "";
  }

  FakeNodeIo fake_;  // a member of the subclass: destroyed after TearDown freed client_
};

TEST_F(ClientLogicTest, PutsSpreadOverNodesAndCopiesGoToDistinctNodes) {
  for (int i = 0; i < 30; ++i) PutPage(absl::StrFormat("spread/%d", i));
  EXPECT_EQ(fake_.nodes_written().size(), 3u) << "placement should use every node";
  EXPECT_EQ(client_->stats().transport, "fake");

  PutPage("two-copies", 2);
  auto info = admin_->Stat("two-copies");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->copies.size(), 2u);
  EXPECT_NE(info->copies[0].node_id, info->copies[1].node_id);
}

TEST_F(ClientLogicTest, EveryCopyUnreachableIsUnavailableNamingKeyAndNode) {
  std::string node = PutPage("stranded");
  fake_.FailNode(node, absl::UnavailableError("connection refused"));
  auto got = client_->Get("stranded");
  ASSERT_FALSE(got.ok());
  // The client reports the node; the directory makes it suspect at once
  // (a miss) and probes it. Either way the error names the key and node.
  EXPECT_TRUE(absl::IsUnavailable(got.status()) || absl::IsNotFound(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("stranded"), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find(node), std::string::npos) << got.status();
  EXPECT_GE(fake_.reads(node), 1);
  // The node serves again (it answered the directory's probe): so does the key.
  fake_.FailNode(node, absl::OkStatus());
  EXPECT_TRUE(WaitUntil([&] { return client_->Get("stranded").ok(); }));
}

TEST_F(ClientLogicTest, DamagedBytesFromACachedLocationAreReadAgainAfterALookup) {
  std::string node = PutPage("cached");
  ASSERT_TRUE(client_->Get("cached").ok());  // looks it up and caches the location
  uint64_t lookups_before = client_->stats().directory_requests;
  fake_.DamageReads(node, 1);
  auto got = client_->Get("cached");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, PageBytes("cached", 64 << 10));
  ClientStats stats = client_->stats();
  EXPECT_EQ(stats.checksum_failures, 1u);
  EXPECT_EQ(stats.stale_cached_reads, 1u);
  EXPECT_EQ(stats.directory_requests - lookups_before, 1u) << "one fresh lookup, no more";
}

TEST_F(ClientLogicTest, AWriteFailingOnOneCopyCommitsTheOthersAndOnAllIsAborted) {
  // Three nodes, two copies: with one node failing, a put whose copies
  // include it still commits with the other copy.
  std::string bad = cluster_->node_address(0);
  fake_.FailNode(bad, absl::UnavailableError("connection refused"));
  for (int i = 0; i < 6; ++i) {
    std::string key = absl::StrFormat("one-bad/%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, 4096), {.replicas = 2}).ok()) << key;
    auto got = client_->Get(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, PageBytes(key, 4096));
  }
  EXPECT_GT(fake_.writes(bad), 0) << "no put tried the failing node";

  // Every node failing: the put fails naming a node and leaves nothing.
  for (int i = 1; i < 3; ++i) {
    fake_.FailNode(cluster_->node_address(i), absl::UnavailableError("connection refused"));
  }
  // (Reservations the client holds for its next puts of the shape above,
  // pre-handed, stay out: only the failed put's must go.)
  auto pending_before = admin_->State();
  ASSERT_TRUE(pending_before.ok());
  absl::Status put = client_->Put("nowhere", PageBytes("nowhere", 4096));
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_NE(put.message().find("nowhere"), std::string::npos) << put;
  auto exists = client_->Exists("nowhere");
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE(*exists);
  auto pool = admin_->State();
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->pending_puts, pending_before->pending_puts) << "the reservation was not aborted";
}

}  // namespace
}  // namespace unipool::testing
