// The installed SDK works for an application outside this tree: `cmake
// --install` into a temporary prefix, the consumer (tests/sdk_install/
// consumer) built once with find_package(unipool) and once with pkg-config,
// and both run against a real local cluster and against no directory.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

// Runs a shell command; its exit code, or -1 when it did not exit.
int RunShell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SdkInstallTest, AnOutsideProjectBuildsAndRunsAgainstTheInstalledSdk) {
  std::string work =
      (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-sdk-install-%d", getpid()))
          .string();
  ASSERT_EQ(
      RunShell(absl::StrFormat("%s/tests/sdk_install/build-consumers.sh %s %s %s",
                               UNIPOOL_SOURCE_DIR, UNIPOOL_SOURCE_DIR, UNIPOOL_BUILD_DIR, work)),
      0);
  const std::string consumers[] = {work + "/cmake/consumer", work + "/pkg-config-consumer"};
  for (const std::string& consumer : consumers) {
    EXPECT_EQ(RunShell(consumer + " 127.0.0.1:1 --unreachable"), 0) << consumer;
  }
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 16 << 20;
  options.work_dir = work + "/cluster";
  auto cluster = LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  for (const std::string& consumer : consumers) {
    EXPECT_EQ(RunShell(consumer + " " + (*cluster)->directory_address()), 0) << consumer;
  }
  cluster->reset();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(work);
}

}  // namespace
}  // namespace unipool
