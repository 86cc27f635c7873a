// Runs the SDK example from README.md (extracted and compiled by CMake)
// against a real local cluster.
#include <sys/wait.h>

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/testing/test_cluster.h"

namespace unipool {
namespace {

TEST(ReadmeExampleTest, RunsAgainstALocalCluster) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 16 << 20;
  auto cluster = testing::StartTestCluster("readme", options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::string command =
      absl::StrFormat("%s/readme_example %s", ExecutableDir(), (*cluster)->directory_address());
  // Twice: the second run finds the page already there and still reads it.
  for (int run = 0; run < 2; ++run) {
    int status = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << command;
  }
}

}  // namespace
}  // namespace unipool
