// The SDK's engine calls against a real cluster: LookupPrefix and GetPrefix
// (one directory round trip, leases, cached locations), the asynchronous
// batches (two in flight from one thread), and the batch overloads taking
// std::string keys and byte vectors.
#include <csignal>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

constexpr size_t kPage = 64 << 10;

class EngineCallsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    LocalClusterOptions options;
    options.nodes = 2;
    auto started = testing::StartTestCluster("engine-calls", options);
    ASSERT_TRUE(started.ok()) << started.status();
    cluster_ = std::move(*started);
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    ClientOptions options;
    options.directory = cluster_->directory_address();
    // TCP: the in-flight test stalls a node, which the same-host path (a
    // copy from the mapped slab) would not notice.
    options.shm = false;
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  // keys[0..n) of a chain named `name`, the first `stored` of them put.
  std::vector<std::string> Chain(const std::string& name, int n, int stored) {
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> pages;
    for (int i = 0; i < n; ++i) {
      keys.push_back(absl::StrFormat("%s/block.%d", name, i));
      if (i < stored) pages.emplace_back(kPage, static_cast<uint8_t>(i + 1));
    }
    std::vector<std::string> first(keys.begin(), keys.begin() + stored);
    for (const absl::Status& s : client_->BatchPut(first, pages)) EXPECT_TRUE(s.ok()) << s;
    return keys;
  }

  uint64_t DirectoryRequests() const { return client_->stats().directory_requests; }

  static testing::TestCluster cluster_;
  std::unique_ptr<Client> client_;
};

testing::TestCluster EngineCallsTest::cluster_;

TEST_F(EngineCallsTest, LookupPrefixIsOneRoundTripAndCachesLocations) {
  std::vector<std::string> keys = Chain("lookup", 10, 6);
  uint64_t before = DirectoryRequests();
  absl::StatusOr<size_t> present = client_->LookupPrefix(keys);
  ASSERT_TRUE(present.ok()) << present.status();
  EXPECT_EQ(*present, 6u);
  EXPECT_EQ(DirectoryRequests() - before, 1u);

  // The following get reads from the nodes without asking the directory.
  std::vector<std::string> prefix(keys.begin(), keys.begin() + 6);
  before = DirectoryRequests();
  auto got = client_->BatchGet(prefix);
  EXPECT_EQ(DirectoryRequests() - before, 0u);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_EQ((*got[i])[0], i + 1);
  }
}

TEST_F(EngineCallsTest, LookupPrefixStopsAtTheFirstMiss) {
  std::vector<std::string> keys = Chain("gap", 6, 6);
  ASSERT_TRUE(client_->Remove(keys[2]).ok());
  EXPECT_EQ(*client_->LookupPrefix(keys), 2u);
  std::vector<std::string> missing_first = {"gap/none", keys[0], keys[1]};
  EXPECT_EQ(*client_->LookupPrefix(missing_first), 0u);
  EXPECT_EQ(*client_->LookupPrefix(std::vector<std::string>{}), 0u);
  absl::StatusOr<size_t> bad = client_->LookupPrefix(std::vector<std::string>{""});
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

TEST_F(EngineCallsTest, GetPrefixReadsThePresentPrefixIntoBuffers) {
  std::vector<std::string> keys = Chain("getprefix", 8, 5);
  std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(kPage));
  uint64_t before = DirectoryRequests();
  absl::StatusOr<size_t> read = client_->GetPrefix(keys, buffers);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 5u);
  EXPECT_EQ(DirectoryRequests() - before, 1u);  // the lookup; the reads go to the nodes
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(buffers[i][kPage - 1], i + 1) << i;
  EXPECT_EQ(buffers[5][0], 0);

  // Still one round trip with the location cache off: the read uses the
  // locations the lookup returned.
  ClientOptions options;
  options.directory = cluster_->directory_address();
  options.location_cache_entries = 0;
  auto uncached = Client::Connect(options);
  ASSERT_TRUE(uncached.ok()) << uncached.status();
  before = (*uncached)->stats().directory_requests;
  read = (*uncached)->GetPrefix(keys, buffers);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 5u);
  EXPECT_EQ((*uncached)->stats().directory_requests - before, 1u);
}

TEST_F(EngineCallsTest, GetPrefixErrorsNameTheKey) {
  std::vector<std::string> keys = Chain("small", 2, 2);
  std::vector<std::vector<uint8_t>> buffers = {std::vector<uint8_t>(kPage),
                                               std::vector<uint8_t>(10)};
  absl::StatusOr<size_t> read = client_->GetPrefix(keys, buffers);
  ASSERT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
  EXPECT_NE(read.status().message().find("small/block.1"), std::string::npos) << read.status();
  buffers.pop_back();
  read = client_->GetPrefix(keys, buffers);
  EXPECT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
}

TEST_F(EngineCallsTest, AsyncBatchesReturnPerKeyResults) {
  std::vector<std::string> keys = {"async/a", "async/b"};
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<uint8_t> a(1000, 1), b(2000, 2);
  std::vector<std::span<const uint8_t>> values = {a, b};
  auto put = client_->BatchPutAsync(views, values);
  for (const absl::Status& s : put.Wait()) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(put.Done());

  std::vector<uint8_t> out_a(1000), out_b(10);
  std::vector<std::span<uint8_t>> buffers = {out_a, out_b};
  auto get = client_->BatchGetAsync(views, buffers);
  const auto& results = get.Wait();
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ(*results[0], 1000u);
  EXPECT_EQ(out_a, a);
  ASSERT_TRUE(absl::IsInvalidArgument(results[1].status()));
  EXPECT_NE(results[1].status().message().find("async/b"), std::string::npos);

  std::vector<uint8_t> out_b2(2000);
  std::vector<std::span<uint8_t>> prefix_buffers = {out_a, out_b2};
  auto prefix = client_->GetPrefixAsync(views, prefix_buffers);
  ASSERT_TRUE(prefix.Wait().ok()) << prefix.Wait().status();
  EXPECT_EQ(*prefix.Wait(), 2u);
  EXPECT_EQ(out_b2, b);
}

// Batch A reads from a node that is stopped (SIGSTOP), so it cannot finish;
// batch B, started after A from the same thread, reads from the other node
// and finishes while A is still in flight; A finishes once the node resumes.
// The order of events is forced, not timed.
TEST_F(EngineCallsTest, TwoBatchesInFlightFromOneThread) {
  std::vector<std::string> keys = Chain("inflight", 8, 8);
  std::vector<std::string> on_node[2];
  for (const std::string& key : keys) {
    absl::StatusOr<ObjectInfo> info = Admin(*client_).Stat(key);
    ASSERT_TRUE(info.ok()) << info.status();
    on_node[info->copies[0].node_address == cluster_->node_address(0) ? 0 : 1].push_back(key);
  }
  ASSERT_FALSE(on_node[0].empty());
  ASSERT_FALSE(on_node[1].empty());
  std::vector<std::string_view> a_keys(on_node[0].begin(), on_node[0].end());
  std::vector<std::string_view> b_keys(on_node[1].begin(), on_node[1].end());
  std::vector<std::vector<uint8_t>> a_pages(a_keys.size(), std::vector<uint8_t>(kPage));
  std::vector<std::vector<uint8_t>> b_pages(b_keys.size(), std::vector<uint8_t>(kPage));
  std::vector<std::span<uint8_t>> a_buffers(a_pages.begin(), a_pages.end());
  std::vector<std::span<uint8_t>> b_buffers(b_pages.begin(), b_pages.end());

  std::vector<std::string> events;
  ASSERT_TRUE(cluster_->PauseNode(0).ok());
  auto a = client_->BatchGetAsync(a_keys, a_buffers);
  events.push_back("a started");
  auto b = client_->BatchGetAsync(b_keys, b_buffers);
  events.push_back("b started");
  for (const auto& r : b.Wait()) EXPECT_TRUE(r.ok()) << r.status();
  events.push_back("b done");
  if (!a.Done()) events.push_back("a in flight");
  ASSERT_TRUE(cluster_->ResumeNode(0).ok());
  for (const auto& r : a.Wait()) EXPECT_TRUE(r.ok()) << r.status();
  events.push_back("a done");
  EXPECT_EQ(events, (std::vector<std::string>{"a started", "b started", "b done", "a in flight",
                                              "a done"}));
  for (size_t i = 0; i < a_pages.size(); ++i) EXPECT_NE(a_pages[i][0], 0) << a_keys[i];
}

}  // namespace
}  // namespace unipool
