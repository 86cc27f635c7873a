// A test fixture parameterised by transport (transports.h): a real cluster
// of three nodes that serve it and a client that uses it, started by each
// test (so a test may take nodes or the directory down).
#ifndef UNIPOOL_TESTS_CONFORMANCE_TRANSPORT_TEST_H_
#define UNIPOOL_TESTS_CONFORMANCE_TRANSPORT_TEST_H_

#include <cstdlib>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "transports.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/cluster_test.h"

namespace unipool::testing {

class TransportTest : public ClusterTest, public ::testing::WithParamInterface<TransportSetup> {
 protected:
  const TransportSetup& setup() const { return GetParam(); }
  // How long the cluster may take to notice or recover anything.
  absl::Duration Patience() const { return setup().slow ? absl::Seconds(60) : absl::Seconds(20); }

  // Applies the transport's environment, starts the cluster and connects
  // client_. With `shared_slabs`, the nodes' slabs are shared-memory objects
  // the test can open (LocalClusterOptions::shared_slabs).
  void StartTransportCluster(bool shared_slabs = false) {
    for (const auto& [name, value] : setup().environment) setenv(name.c_str(), value.c_str(), 1);
    LocalClusterOptions options;
    options.nodes = 3;
    options.pool_size = setup().pool_size;
    options.node_timeout = setup().node_timeout;
    options.node_flags = setup().node_flags;
    options.shared_slabs = shared_slabs;
    ASSERT_NO_FATAL_FAILURE(StartCluster("transport", options));
    ASSERT_NO_FATAL_FAILURE(ReconnectClient());
  }
  // Connects a new client_ (and admin_) with the transport's options; the
  // one before, if any, is closed (giving back its pre-handed reservations).
  void ReconnectClient() {
    ClientOptions client_options = setup().client;
    client_options.name = "transport-test";
    ASSERT_NO_FATAL_FAILURE(ConnectClient(client_options));
  }
  // Another client of the cluster, with `options`.
  std::unique_ptr<Client> Connect(ClientOptions options, const std::string& name) {
    options.name = name;
    auto client = ConnectTo(*cluster_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  void TearDown() override {
    ClusterTest::TearDown();
    for (const auto& entry : setup().environment) unsetenv(entry.first.c_str());
  }
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTS_CONFORMANCE_TRANSPORT_TEST_H_
