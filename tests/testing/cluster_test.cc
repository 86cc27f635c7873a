#include "unipool/testing/cluster_test.h"

#include <utility>

namespace unipool::testing {

void ClusterTest::StartCluster(std::string_view prefix, LocalClusterOptions options,
                               TestAuth auth) {
  auto cluster = StartTestCluster(prefix, std::move(options), auth);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  cluster_ = std::move(*cluster);
}

void ClusterTest::ConnectClient(ClientOptions options) {
  ASSERT_NE(cluster_, nullptr) << "StartCluster first";
  auto client = ConnectTo(*cluster_, std::move(options));
  ASSERT_TRUE(client.ok()) << client.status();
  AdoptClient(std::move(*client));
}

void ClusterTest::AdoptClient(std::unique_ptr<Client> client) {
  admin_.reset();
  client_ = std::move(client);
  admin_ = std::make_unique<Admin>(*client_);
}

void ClusterTest::TearDown() {
  admin_.reset();
  client_.reset();
  cluster_.reset();
}

}  // namespace unipool::testing
