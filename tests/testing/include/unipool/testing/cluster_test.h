// A fixture for tests of one cluster (real processes on loopback) through
// one client: cluster_, client_ and admin_ (of client_), torn down in that
// order reversed. Start with
//   ASSERT_NO_FATAL_FAILURE(StartCluster("prefix", options));
//   ASSERT_NO_FATAL_FAILURE(ConnectClient(client_options));
// A subclass that overrides TearDown calls ClusterTest::TearDown() last.
#ifndef UNIPOOL_TESTING_CLUSTER_TEST_H_
#define UNIPOOL_TESTING_CLUSTER_TEST_H_

#include <memory>
#include <string_view>

#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"

namespace unipool::testing {

class ClusterTest : public ::testing::Test {
 protected:
  // Starts cluster_ in a fresh folder named after `prefix`; fails the test
  // when it cannot.
  void StartCluster(std::string_view prefix, LocalClusterOptions options,
                    TestAuth auth = TestAuth::kNone);
  // Connects client_ (with the cluster's key, if any) and admin_.
  void ConnectClient(ClientOptions options = {});
  // Takes a client made another way (e.g. over a fake NodeIo) as client_.
  void AdoptClient(std::unique_ptr<Client> client);
  void TearDown() override;

  TestCluster cluster_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Admin> admin_;  // of client_
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_CLUSTER_TEST_H_
