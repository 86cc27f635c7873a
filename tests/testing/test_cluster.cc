#include "unipool/testing/test_cluster.h"

#include <string>

#include "unipool/common/auth.h"
#include "unipool/common/status_macros.h"
#include "unipool/testing/temp_dir.h"

namespace unipool::testing {

void StopAndClean::operator()(LocalCluster* cluster) const {
  std::string dir = cluster->work_dir();
  delete cluster;
  RemoveUnlessFailed(dir);
}

absl::StatusOr<TestCluster> StartTestCluster(std::string_view prefix, LocalClusterOptions options,
                                             TestAuth auth) {
  options.work_dir = FreshTestDir(prefix);
  std::string dir = options.work_dir;
  if (auth == TestAuth::kClusterKey) {
    options.key_file = dir + "/cluster.key";
    ASSIGN_OR_RETURN(Credential key, NewClusterKey());
    RETURN_IF_ERROR(WriteCredentialFile(options.key_file, key));
  }
  auto cluster = LocalCluster::Start(std::move(options));
  if (!cluster.ok()) {
    RemoveUnlessFailed(dir);
    return cluster.status();
  }
  return TestCluster(cluster->release());
}

absl::StatusOr<std::unique_ptr<Client>> ConnectTo(const LocalCluster& cluster,
                                                  ClientOptions options) {
  options.directory = cluster.directory_address();
  if (options.key_file.empty()) options.key_file = cluster.key_file();
  if (options.tls_ca.empty()) options.tls_ca = cluster.tls_ca();
  return Client::Connect(options);
}

int NodeIndex(const LocalCluster& cluster, std::string_view address) {
  for (int i = 0; i < cluster.node_count(); ++i) {
    if (cluster.node_address(i) == address) return i;
  }
  return -1;
}

}  // namespace unipool::testing
