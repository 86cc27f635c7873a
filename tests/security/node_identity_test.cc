// A node's name, its record and the pool it belongs to, attacked by real
// processes on loopback (no key: the name is protected by the node's
// identity, not by the cluster key): a registration that claims a live
// node's name without its identity is refused while the real node keeps
// its objects; records too large for a reply are refused and status keeps
// working; a directory whose catalog was lost refuses the old pool's nodes,
// and one whose --db folder disappears stops acknowledging writes.
#include <filesystem>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/connection.h"
#include "unipool/common/process.h"
#include "unipool/common/protocol.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

constexpr int kObjects = 10;
constexpr size_t kObjectBytes = 64 << 10;

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("node-identity");
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 64 << 20;
    options.work_dir = dir_ + "/cluster";
    options.node_flags = {"--shm=off", "--rdma=off"};
    options.shared_slabs = true;
    auto cluster = LocalCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  void TearDown() override {
    cluster_.reset();
    testing::RemoveUnlessFailed(dir_);
  }

  absl::StatusOr<std::unique_ptr<Client>> Connect() {
    ClientOptions options;
    options.directory = cluster_->directory_address();
    return Client::Connect(options);
  }
  void PutObjects(Client& client) {
    for (int i = 0; i < kObjects; ++i) {
      std::string key = absl::StrFormat("victim/%d", i);
      ASSERT_TRUE(client.Put(key, testing::PageBytes(key, kObjectBytes)).ok()) << key;
    }
  }
  void ExpectObjects(Client& client) {
    for (int i = 0; i < kObjects; ++i) {
      std::string key = absl::StrFormat("victim/%d", i);
      auto got = client.Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status();
      EXPECT_EQ(*got, testing::PageBytes(key, kObjectBytes)) << key;
    }
  }

  // Sends one RegisterNode as a node would, and returns the directory's answer.
  absl::Status Register(const std::string& name, const std::vector<std::string>& transports,
                        const std::string& identity, uint64_t slab_size = 1ull << 30) {
    ConnectionOptions as_node;
    as_node.role = wire::Role::Node;
    auto conn = Connection::Open(cluster_->directory_address(), as_node);
    if (!conn.ok()) return conn.status();
    flatbuffers::FlatBufferBuilder fbb;
    auto n = fbb.CreateString(name);
    auto host = fbb.CreateString("attacker");
    auto address = fbb.CreateString("127.0.0.1:9");
    auto t = fbb.CreateVectorOfStrings(transports);
    auto id = fbb.CreateVector(reinterpret_cast<const uint8_t*>(identity.data()), identity.size());
    FinishMessage(fbb, wire::CreateRegisterNode(fbb, n, host, address, /*slab_id=*/77, slab_size, t,
                                                false, id));
    return (*conn)->Call(fbb).status();
  }

  // Waits until the directory has the (only) node up at `address`.
  static bool WaitForNodeAt(Client& client, const std::string& address) {
    return testing::WaitUntil([&] {
      auto state = Admin(client).State();
      return state.ok() && state->nodes.size() == 1 && state->nodes[0].up &&
             state->nodes[0].data_address == address;
    });
  }

  std::string dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(NodeIdentityTest, ARogueRegistrationCannotTakeALiveNodesName) {
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  PutObjects(**client);
  // A 1 GiB "node" at the attacker's address, under the live node's name,
  // with a made-up identity or none.
  for (const std::string& identity : {std::string(32, 'x'), std::string()}) {
    absl::Status rogue = Register(cluster_->node_name(0), {"tcp"}, identity);
    EXPECT_EQ(rogue.code(), absl::StatusCode::kFailedPrecondition) << rogue;
    EXPECT_NE(rogue.message().find("another identity"), std::string::npos) << rogue;
  }
  // The real node still holds the name, its address and its objects.
  auto state = Admin(**client).State();
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->nodes.size(), 1u);
  EXPECT_EQ(state->nodes[0].data_address, cluster_->node_address(0));
  EXPECT_EQ(state->nodes[0].capacity, 64u << 20);
  ExpectObjects(**client);
  // The real node, restarted with its state, is readmitted with them.
  ASSERT_TRUE(cluster_->RestartNode(0).ok());
  ASSERT_TRUE(WaitForNodeAt(**client, cluster_->node_address(0)));
  auto fresh = Connect();  // the first client's cached locations are stale
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ExpectObjects(**fresh);
}

TEST_F(NodeIdentityTest, RecordsTooLargeForAReplyAreRefusedAndStatusWorks) {
  std::string huge(1 << 20, 't');
  absl::Status s = Register("rogue-1", {huge, huge}, std::string(32, 'a'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("transport name"), std::string::npos) << s;
  s = Register(std::string(10000, 'n'), {"tcp"}, std::string(32, 'a'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = Register("rogue-2", {"tcp"}, std::string(32, 'a'), /*slab_size=*/1ull << 62);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  auto status = testing::Run(
      {ExecutableDir() + "/unipoolctl", "--directory", cluster_->directory_address(), "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  PutObjects(**client);
  ExpectObjects(**client);
}

TEST_F(NodeIdentityTest, ADirectoryWithALostCatalogRefusesThePoolsNodes) {
  ASSERT_TRUE(cluster_->KillDirectory().ok());
  std::filesystem::remove_all(cluster_->work_dir() + "/directory-db");
  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  // One line each, in the node's log and the directory's.
  EXPECT_TRUE(testing::WaitForFileText(cluster_->work_dir() + "/" + cluster_->node_name(0) + ".log",
                                       "refused this node: this node belongs to pool"));
  EXPECT_TRUE(testing::WaitForFileText(cluster_->work_dir() + "/directory.log",
                                       "was --db lost or replaced?"));
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto state = Admin(**client).State();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->nodes.empty());
}

TEST_F(NodeIdentityTest, ADirectoryWhoseDbFolderVanishesStopsAcknowledging) {
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  PutObjects(**client);
  std::filesystem::remove_all(cluster_->work_dir() + "/directory-db");
  absl::Status put = (*client)->Put("after", testing::PageBytes("after", kObjectBytes));
  EXPECT_EQ(put.code(), absl::StatusCode::kFailedPrecondition) << put;
  EXPECT_NE(put.message().find("catalog folder"), std::string::npos) << put;
  EXPECT_TRUE(
      testing::WaitForFileText(cluster_->work_dir() + "/directory.log", "writes are refused"));
}

}  // namespace
}  // namespace unipool
