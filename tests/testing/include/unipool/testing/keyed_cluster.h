// A fixture for attacks on a pool with a cluster key (tests/security): one
// cluster of real processes whose key the test holds, so that it can mint
// tokens of any role and prefix (tenants, admins, nodes) and connect with
// them, as clients of the SDK or as raw connections sending whatever
// requests the attack needs (raw_requests.h).
#ifndef UNIPOOL_TESTING_KEYED_CLUSTER_H_
#define UNIPOOL_TESTING_KEYED_CLUSTER_H_

#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/connection.h"
#include "unipool/testing/test_cluster.h"

namespace unipool::testing {

class KeyedClusterTest : public ::testing::Test {
 protected:
  // Starts cluster_ with a new cluster key in a fresh folder named after
  // `prefix`, and loads the key into key_; fails the test when it cannot.
  void StartKeyedCluster(std::string_view prefix, LocalClusterOptions options);
  // One node with a pool of `pool_bytes` that serves TCP only (no shared
  // memory), so that every byte passes the node's checks.
  static LocalClusterOptions OneTcpNode(uint64_t pool_bytes = 64 << 20);

  // A token of `role` limited to `prefix` ("": the whole pool), minted with
  // the cluster key.
  std::shared_ptr<const Credential> Token(wire::Role role, const std::string& prefix);
  // The same written to `name` in the cluster's folder; its path.
  std::string TokenFile(const std::string& name, wire::Role role, const std::string& prefix);
  // A client holding the key or token in `key_file` (options.key_file is
  // replaced); null, with the test failed, when it cannot connect.
  std::unique_ptr<Client> Connect(const std::string& key_file, ClientOptions options = {});
  // An admin holding the cluster key.
  std::unique_ptr<Admin> ClusterAdmin();
  // An authenticated raw connection to `address` holding `credential`.
  std::unique_ptr<Connection> Open(const std::string& address,
                                   std::shared_ptr<const Credential> credential);

  Credential key_;
  TestCluster cluster_;
};

// Expects PermissionDenied whose message contains `why`.
void ExpectRefused(const absl::Status& s, std::string_view why);

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_KEYED_CLUSTER_H_
