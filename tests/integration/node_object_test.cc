// A pool node as an object in the test's own process (node/node.h): it
// starts against a real directory process, registers, serves puts and gets,
// and stops in reverse order, after which the directory sees it gone.
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/node/node.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool::testing {
namespace {

TEST(NodeObjectTest, AnInProcessNodeJoinsServesAndLeaves) {
  TestDir dir("node-object");
  LocalClusterOptions cluster_options;
  cluster_options.nodes = 0;  // the directory alone: the pool is the in-process node
  cluster_options.work_dir = dir.File("cluster");
  auto cluster = LocalCluster::Start(cluster_options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();

  NodeOptions options;
  options.pool_size = 64 << 20;
  options.directory = (*cluster)->directory_address();
  options.listen = "127.0.0.1:0";
  options.name = "in-process";
  options.rdma = false;
  options.prefault = false;
  options.state_dir = dir.File("node-state");
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(options);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->name(), "in-process");
  ASSERT_TRUE((*cluster)->WaitForNodesUp(1, absl::Seconds(60)).ok());

  ClientOptions client_options;
  client_options.directory = (*cluster)->directory_address();
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto admin = Admin::Connect(client_options);
  ASSERT_TRUE(admin.ok()) << admin.status();
  // Every object lands on the in-process node and reads back right.
  for (int i = 0; i < 32; ++i) {
    std::string key = "object/" + std::to_string(i);
    ASSERT_TRUE((*client)->Put(key, PageBytes(key, 64 << 10)).ok()) << key;
  }
  auto state = (*admin)->State();
  ASSERT_TRUE(state.ok()) << state.status();
  const NodeState* mine = nullptr;
  for (const NodeState& n : state->nodes) {
    if (n.name == "in-process") mine = &n;
  }
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->data_address, (*node)->address());
  EXPECT_EQ(mine->objects, 32u);
  for (int i = 0; i < 32; ++i) {
    std::string key = "object/" + std::to_string(i);
    auto got = (*client)->Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    EXPECT_EQ(*got, PageBytes(key, 64 << 10)) << key;
  }

  (*node)->Stop();
  EXPECT_TRUE(WaitUntil([&] {
    auto now = (*admin)->State();
    if (!now.ok()) return false;
    for (const NodeState& n : now->nodes) {
      if (n.name == "in-process") return !n.up;
    }
    return false;
  })) << "the directory did not see the stopped node go";
}

}  // namespace
}  // namespace unipool::testing
