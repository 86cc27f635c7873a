#include "unipool/testing/temp_dir.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace unipool::testing {

std::string FreshTestDir(std::string_view prefix) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrFormat("unipool-%s", prefix);
  if (test != nullptr) {
    // Parameterised tests are named "Test/param": keep the name one folder.
    name += "-" + absl::StrReplaceAll(test->name(), {{"/", "-"}});
  }
  name += absl::StrFormat("-%d", getpid());
  std::filesystem::path dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void RemoveUnlessFailed(const std::string& dir) {
  if (dir.empty()) return;
  // Outside a test (a suite's teardown), any failed test of the run counts.
  const ::testing::UnitTest& run = *::testing::UnitTest::GetInstance();
  bool failed = run.current_test_info() != nullptr ? ::testing::Test::HasFailure()
                                                   : run.failed_test_count() > 0;
  if (failed) {
    std::cerr << "kept for reading: " << dir << "\n";
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

std::string TestDir::File(std::string_view name) const {
  return (std::filesystem::path(path_) / name).string();
}

}  // namespace unipool::testing
