// The client's own logic above the transport: where puts go, which copy a
// get reads, what it does when a node fails or hands back damaged bytes.
// Page bytes move through a FakeNodeIo put under the client (ClientSeam,
// unipool/client/node_io_seam.h), so each fault is scripted exactly and
// nothing is left to timing. ClientLogicTest places objects with an
// in-process directory (real Directory, real RocksDB, DirectoryService on
// loopback) and two fake nodes; ClientLogicClusterTest uses real directory
// and node processes, for what needs nodes that answer the directory.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/client/node_io_seam.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/directory_service.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/fake_node_io.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

constexpr char kNear[] = "near:1";  // a node on the client's machine
constexpr char kFar[] = "far:1";    // a node elsewhere
constexpr int kEveryRead = 1 << 30;

class ClientLogicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("client-logic");
    DirectoryOptions options;
    // A clock that stands still: the fake nodes never beat, and never time out.
    options.clock = [] { return absl::FromUnixSeconds(1'800'000'000); };
    auto directory = Directory::Open((dir_ / "catalog").string(), options);
    ASSERT_TRUE(directory.ok()) << directory.status();
    directory_ = std::move(*directory);
    ASSERT_TRUE(Register("near", "client-host", kNear).ok());
    ASSERT_TRUE(Register("far", "other-host", kFar).ok());
    service_ = std::make_unique<DirectoryService>(directory_.get());
    ASSERT_TRUE(service_->Start("127.0.0.1:0").ok());
    ClientOptions client_options;
    client_options.directory = service_->address();
    auto client = ClientSeam::Connect(client_options, &nodes_, "client-host");
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    admin_ = std::make_unique<Admin>(*client_);
  }
  void TearDown() override {
    admin_.reset();
    client_.reset();
    service_.reset();
    directory_.reset();
    RemoveUnlessFailed(dir_.string());
  }

  absl::Status Register(const std::string& name, const std::string& host,
                        const std::string& address) {
    NodeRegistration reg;
    reg.name = name;
    reg.host = host;
    reg.data_address = address;
    reg.slab_id = 1;
    reg.slab_size = 64 << 20;
    reg.transports = {"tcp"};
    return directory_->RegisterNode(reg).status();
  }

  std::vector<uint8_t> Page(uint8_t seed) { return std::vector<uint8_t>(100'000, seed); }

  std::filesystem::path dir_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<DirectoryService> service_;
  FakeNodeIo nodes_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Admin> admin_;  // of client_
};

TEST_F(ClientLogicTest, ReadsTheCopyOnItsOwnHostFirst) {
  ASSERT_TRUE(client_->Put("two", Page(1), {.replicas = 2}).ok());
  auto got = client_->Get("two");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(1));
  EXPECT_EQ(nodes_.reads(kNear), 1);
  EXPECT_EQ(nodes_.reads(kFar), 0);
  EXPECT_EQ(client_->stats().transport, "fake");
}

TEST_F(ClientLogicTest, FallsBackToAnotherCopyWhenANodeFails) {
  ASSERT_TRUE(client_->Put("two", Page(2), {.replicas = 2}).ok());
  nodes_.FailNode(kNear, absl::UnavailableError("fake node is down"));
  auto got = client_->Get("two");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(2));
  EXPECT_EQ(client_->stats().replica_fallbacks, 1u);
}

TEST_F(ClientLogicTest, DamagedBytesAreNeverReturned) {
  ASSERT_TRUE(client_->Put("two", Page(3), {.replicas = 2}).ok());
  nodes_.DamageReads(kNear, kEveryRead);
  auto got = client_->Get("two");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(3)) << "served by the undamaged copy";
  EXPECT_EQ(client_->stats().checksum_failures, 1u);
  nodes_.DamageReads(kFar, kEveryRead);
  auto damaged = client_->Get("two");
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss) << damaged.status();
}

TEST_F(ClientLogicTest, DamagedBytesFromACachedLocationAreReadAgainAfterALookup) {
  ASSERT_TRUE(client_->Put("cached", Page(6)).ok());
  auto info = admin_->Stat("cached");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->copies.size(), 1u);
  std::string node = info->copies[0].node_address;
  ASSERT_TRUE(client_->Get("cached").ok());  // looks it up and caches the location
  uint64_t lookups_before = client_->stats().directory_requests;
  nodes_.DamageReads(node, 1);
  auto got = client_->Get("cached");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(6));
  ClientStats stats = client_->stats();
  EXPECT_EQ(stats.checksum_failures, 1u);
  EXPECT_EQ(stats.stale_cached_reads, 1u);
  EXPECT_EQ(stats.directory_requests - lookups_before, 1u) << "one fresh lookup, no more";
}

// Sixteen pages put in one batch, their keys, and buffers to get them into.
struct Batch {
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> pages, got;
};

Batch PutBatch(Client& client, const std::string& prefix) {
  Batch b;
  for (int i = 0; i < 16; ++i) {
    b.keys.push_back(absl::StrFormat("%s/%d", prefix, i));
    b.pages.push_back(PageBytes(b.keys.back(), 64 << 10));
    b.got.emplace_back(64 << 10);
  }
  std::vector<std::string_view> keys(b.keys.begin(), b.keys.end());
  std::vector<std::span<const uint8_t>> values(b.pages.begin(), b.pages.end());
  for (const absl::Status& s : client.BatchPut(keys, values)) EXPECT_TRUE(s.ok()) << s;
  return b;
}

void GetBatch(Client& client, Batch& b) {
  std::vector<std::string_view> keys(b.keys.begin(), b.keys.end());
  std::vector<std::span<uint8_t>> into(b.got.begin(), b.got.end());
  for (const auto& got : client.BatchGet(keys, into)) EXPECT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(b.got, b.pages);
}

// The bench saw every UC get call ask the directory while RC gets asked
// nothing. What differs for the client is that UC checks the bytes itself
// (as shm does) and RC does not: cached gets must cost no directory request
// either way.
TEST_F(ClientLogicTest, CachedGetsAskTheDirectoryNothingWhetherOrNotTheTransportVerifies) {
  for (bool transport_verifies : {false, true}) {
    SCOPED_TRACE(transport_verifies ? "transport verifies" : "client verifies");
    nodes_.VerifyReads(transport_verifies);
    Batch b = PutBatch(*client_, transport_verifies ? "verifying" : "plain");
    GetBatch(*client_, b);  // looks the keys up: one request for the batch
    ClientStats before = client_->stats();
    for (int call = 0; call < 32; ++call) GetBatch(*client_, b);
    ClientStats after = client_->stats();
    EXPECT_EQ(after.directory_requests, before.directory_requests);
    EXPECT_EQ(after.location_cache_hits - before.location_cache_hits, 32u * 16u);
    EXPECT_EQ(after.stale_cached_reads, before.stale_cached_reads);
    // Every call read its pages from the nodes (one request per node holding some).
    EXPECT_GE(after.node_requests - before.node_requests, 32u);
  }
}

// Why the bench's UC gets asked the directory: its lease (2 s) ended before
// its slower UC rounds did. A location is trusted until the lease ends;
// after that a batch looks its keys up again in one request (not one per
// key), and the fresh locations are cached for the next calls.
TEST_F(ClientLogicTest, AfterTheLeaseABatchLooksItsKeysUpOnceAndCachesThemAgain) {
  ClientOptions options;
  options.directory = service_->address();
  constexpr absl::Duration kTrust = absl::Seconds(2);
  options.location_cache_ttl = kTrust;
  auto client = ClientSeam::Connect(options, &nodes_, "client-host");
  ASSERT_TRUE(client.ok()) << client.status();
  Batch b = PutBatch(**client, "lease");
  GetBatch(**client, b);
  absl::SleepFor(kTrust + absl::Milliseconds(100));  // past the trust: every entry has expired
  uint64_t before = (*client)->stats().directory_requests;
  GetBatch(**client, b);
  EXPECT_EQ((*client)->stats().directory_requests - before, 1u) << "one lookup for 16 keys";
  uint64_t hits = (*client)->stats().location_cache_hits;
  GetBatch(**client, b);
  // (Fresh for 2 s: only a stall that long would make this a lookup.)
  EXPECT_EQ((*client)->stats().location_cache_hits - hits, 16u);
}

TEST_F(ClientLogicTest, AWriteFailingOnOneCopyCommitsTheOthersAndOnAllIsAborted) {
  // Two copies, one node failing: the put commits the copy that was written.
  nodes_.FailNode(kFar, absl::UnavailableError("fake node is down"));
  ASSERT_TRUE(client_->Put("one-left", Page(4), {.replicas = 2}).ok());
  EXPECT_GT(nodes_.writes(kFar), 0) << "the put did not try the failing node";
  auto info = admin_->Stat("one-left");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->copies.size(), 1u);
  EXPECT_EQ(info->copies[0].node_address, kNear);
  auto got = client_->Get("one-left");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(4));

  // Every node failing: the put fails naming its key and leaves nothing.
  nodes_.FailNode(kNear, absl::UnavailableError("fake node is down"));
  // (Reservations the client holds for its next puts of a shape it put
  // before, pre-handed, stay out: only the failed put's must go.)
  auto pending_before = admin_->State();
  ASSERT_TRUE(pending_before.ok()) << pending_before.status();
  absl::Status put = client_->Put("none-left", Page(5));
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_NE(put.message().find("none-left"), std::string::npos) << put;
  auto exists = client_->Exists("none-left");
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE(*exists) << "aborted, not committed";
  auto pool = admin_->State();
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->pending_puts, pending_before->pending_puts) << "the reservation was not aborted";
}

class ClientLogicClusterTest : public ClusterTest {
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

TEST_F(ClientLogicClusterTest, PutsSpreadOverNodesAndCopiesGoToDistinctNodes) {
  for (int i = 0; i < 30; ++i) PutPage(absl::StrFormat("spread/%d", i));
  EXPECT_EQ(fake_.nodes_written().size(), 3u) << "placement should use every node";
  EXPECT_EQ(client_->stats().transport, "fake");

  PutPage("two-copies", 2);
  auto info = admin_->Stat("two-copies");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->copies.size(), 2u);
  EXPECT_NE(info->copies[0].node_id, info->copies[1].node_id);
}

TEST_F(ClientLogicClusterTest, EveryCopyUnreachableIsUnavailableNamingKeyAndNode) {
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

}  // namespace
}  // namespace unipool::testing
