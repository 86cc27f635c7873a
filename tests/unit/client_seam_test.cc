// The SDK's placement, fallback and retry logic against an in-process
// directory (real Directory, real RocksDB, DirectoryService on loopback) and
// an in-process FakeNodeIo (tests/testing) instead of node processes, through the client's
// NodeIo seam (unipool/client/node_io_seam.h).
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/client/node_io_seam.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/directory_service.h"
#include "unipool/testing/fake_node_io.h"
#include "unipool/testing/temp_dir.h"

namespace unipool {
namespace {

using ::unipool::testing::FakeNodeIo;

constexpr char kNear[] = "near:1";  // a node on the client's machine
constexpr char kFar[] = "far:1";    // a node elsewhere
constexpr int kEveryRead = 1 << 30;

class ClientSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("client-seam");
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
  }
  void TearDown() override {
    client_.reset();
    service_.reset();
    directory_.reset();
    testing::RemoveUnlessFailed(dir_.string());
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
};

TEST_F(ClientSeamTest, ReadsTheCopyOnItsOwnHostFirst) {
  ASSERT_TRUE(client_->Put("two", Page(1), {.replicas = 2}).ok());
  auto got = client_->Get("two");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(1));
  EXPECT_EQ(nodes_.reads(kNear), 1);
  EXPECT_EQ(nodes_.reads(kFar), 0);
  EXPECT_EQ(client_->stats().transport, "fake");
}

TEST_F(ClientSeamTest, FallsBackToAnotherCopyWhenANodeFails) {
  ASSERT_TRUE(client_->Put("two", Page(2), {.replicas = 2}).ok());
  nodes_.FailNode(kNear, absl::UnavailableError("fake node is down"));
  auto got = client_->Get("two");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Page(2));
  EXPECT_EQ(client_->stats().replica_fallbacks, 1u);
}

TEST_F(ClientSeamTest, DamagedBytesAreNeverReturned) {
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

TEST_F(ClientSeamTest, APutCommitsTheCopiesThatWereWritten) {
  nodes_.FailNode(kFar, absl::UnavailableError("fake node is down"));
  ASSERT_TRUE(client_->Put("one-left", Page(4), {.replicas = 2}).ok());
  auto info = Admin(*client_).Stat("one-left");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->copies.size(), 1u);
  EXPECT_EQ(info->copies[0].node_address, kNear);
  nodes_.FailNode(kNear, absl::UnavailableError("fake node is down"));
  EXPECT_EQ(client_->Put("none-left", Page(5)).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(*client_->Exists("none-left")) << "aborted, not committed";
}

}  // namespace
}  // namespace unipool
