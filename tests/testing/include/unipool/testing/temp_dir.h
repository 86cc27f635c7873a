// Private scratch folders for tests: named after the running test and this
// process, so parallel tests (and parallel runs) never share one.
//
// Thread safety: the functions are thread-safe; a TestDir is not.
#ifndef UNIPOOL_TESTING_TEMP_DIR_H_
#define UNIPOOL_TESTING_TEMP_DIR_H_

#include <string>
#include <string_view>

namespace unipool::testing {

// An empty folder <tmp>/unipool-<prefix>-<current test's name>-<pid>
// (emptied first if a crashed earlier run left it), created. Outside a test,
// the test name part is left out.
std::string FreshTestDir(std::string_view prefix);

// Removes `dir` and everything in it, unless the current test has failed (or,
// outside a test, any test of the run has):
// then it is kept (with the processes' logs) for reading, and its path is
// printed.
void RemoveUnlessFailed(const std::string& dir);

// A FreshTestDir removed at destruction (unless the test failed).
class TestDir {
 public:
  explicit TestDir(std::string_view prefix) : path_(FreshTestDir(prefix)) {}
  ~TestDir() { RemoveUnlessFailed(path_); }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_TEMP_DIR_H_
