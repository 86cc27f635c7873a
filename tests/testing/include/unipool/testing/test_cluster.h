// A LocalCluster (real directory and node processes on loopback) in a
// private folder of the running test, and clients connected to it. The
// folder, with every process's log, is removed with the cluster unless the
// test failed.
//
// Thread safety: as LocalCluster (drive it from one thread); the clients are
// thread-safe.
#ifndef UNIPOOL_TESTING_TEST_CLUSTER_H_
#define UNIPOOL_TESTING_TEST_CLUSTER_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "unipool/client.h"
#include "unipool/tools/local_cluster.h"

namespace unipool::testing {

// Stops the cluster, then removes its work folder unless the test failed.
struct StopAndClean {
  void operator()(LocalCluster* cluster) const;
};
using TestCluster = std::unique_ptr<LocalCluster, StopAndClean>;

// Whether a test cluster authenticates: kClusterKey writes a new cluster key
// into its folder and every process (and ConnectTo's clients) proves it, as
// a real deployment does.
enum class TestAuth { kNone, kClusterKey };

// Starts `options` in FreshTestDir(prefix) (options.work_dir is replaced).
absl::StatusOr<TestCluster> StartTestCluster(std::string_view prefix, LocalClusterOptions options,
                                             TestAuth auth = TestAuth::kNone);

// A client of `cluster` (options.directory is filled in, options.key_file
// with the cluster's key and options.tls_ca with its CA when it has them and
// none was given).
absl::StatusOr<std::unique_ptr<Client>> ConnectTo(const LocalCluster& cluster,
                                                  ClientOptions options = {});

// The index of the node whose data address is `address`, or -1.
int NodeIndex(const LocalCluster& cluster, std::string_view address);

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_TEST_CLUSTER_H_
