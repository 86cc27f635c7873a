// A node process with --ssd-dir, SIGKILLed and restarted on the same folder,
// finds its flash pages again: the real unipool-node says so in its log, a
// page whose bytes were flipped on disk is dropped and counted, and every
// other page reads back with its bytes. And the flags are checked first.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "unipool/flash/flash_store.h"
#include "unipool/flash/record.h"
#include "unipool/node/node_flash.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool::testing {
namespace {

constexpr int kPages = 32;
constexpr size_t kPageBytes = 64 << 10;
constexpr char kSsdSize[] = "64MiB";

std::string Key(int i) { return absl::StrCat("prefix/", i); }

// Runs the real unipool-node on `ssd_dir` until its flash tier is open, and
// returns its log.
std::string StartNodeOnFlash(const TestDir& dir, const std::string& ssd_dir, int run) {
  std::string log = dir.File(absl::StrCat("node-", run, ".log"));
  Background node(
      {ExecutableDir() + "/unipool-node", "--directory", "127.0.0.1:1", "--listen", "127.0.0.1:0",
       "--pool-size", "8MiB", "--rdma", "off", "--shm", "off", "--prefault=false", "--state-dir",
       dir.File("state"), "--ssd-dir", ssd_dir, "--ssd-size", kSsdSize},
      log);
  EXPECT_TRUE(WaitForFileText(log, "data path serving on")) << "node run " << run;
  EXPECT_EQ(node.Stop(SIGTERM, absl::Seconds(30)), 0);
  std::ifstream in(log);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FlashNodeTest, AKilledNodeFindsItsFlashPagesAgain) {
  TestDir dir("flash-node");
  const std::string ssd = dir.File("ssd");
  {
    Background writer({ExecutableDir() + "/flash_node_writer", ssd, kSsdSize, dir.File("state"),
                       std::to_string(kPages), std::to_string(kPageBytes)},
                      dir.File("writer.log"));
    ASSERT_FALSE(writer.ReadUntil("flushed", absl::Seconds(60)).empty());
    EXPECT_EQ(writer.Stop(SIGKILL, absl::Seconds(30)), -1) << "killed, not exited";
  }
  std::string first = StartNodeOnFlash(dir, ssd, 1);
  EXPECT_TRUE(absl::StrContains(first, absl::StrCat("flash: ", kPages,
                                                    " pages (2.0 MiB) found "
                                                    "intact in ",
                                                    ssd)) &&
              absl::StrContains(first, "; 0 bad pages dropped"))
      << first;

  // One byte of page 0 flipped on disk while the node is down.
  std::string segment = std::filesystem::directory_iterator(ssd)->path();
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(flash::kHeaderBytes + Key(0).size() + 1000);
    char byte = static_cast<char>(f.peek() ^ 1);
    f.seekp(flash::kHeaderBytes + Key(0).size() + 1000);
    f.write(&byte, 1);
  }
  std::string second = StartNodeOnFlash(dir, ssd, 2);
  EXPECT_TRUE(absl::StrContains(second, absl::StrCat("flash: ", kPages - 1, " pages")) &&
              absl::StrContains(second, "; 1 bad pages dropped"))
      << second;
  EXPECT_TRUE(absl::StrContains(second, "page 'prefix/0'")) << "the bad page named: " << second;

  // Every other page is there, byte for byte.
  flash::FlashOptions options;
  options.dir = ssd;
  options.capacity = 64 << 20;
  options.segment_bytes = NodeFlash::SegmentBytesFor(options.capacity);
  auto store = flash::FlashStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->List().size(), size_t{kPages - 1});
  std::vector<uint8_t> dest(kPageBytes);
  EXPECT_FALSE((*store)->Read(Key(0), 1, dest).ok());
  for (int i = 1; i < kPages; ++i) {
    ASSERT_TRUE((*store)->Read(Key(i), 1, dest).ok()) << i;
    EXPECT_EQ(dest, PageBytes(Key(i), kPageBytes)) << i;
  }
}

TEST(FlashNodeTest, FlashFlagsAreCheckedBeforeAnythingIsCreated) {
  TestDir dir("flash-node");
  std::string file = dir.File("a-file");
  std::ofstream(file) << "x";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--ssd-dir", dir.File("ssd")}, "--ssd-dir and --ssd-size go together"},
      {{"--ssd-size", "1GiB"}, "--ssd-dir and --ssd-size go together"},
      {{"--ssd-dir", dir.File("ssd"), "--ssd-size", "12XB"}, "--ssd-size: "},
      {{"--ssd-dir", dir.File("ssd"), "--ssd-size", "1MiB"}, "under the 64.0 MiB minimum"},
      {{"--ssd-dir", dir.File("ssd"), "--ssd-size", "1000000TiB"}, "is more than the"},
      {{"--ssd-dir", file, "--ssd-size", "1GiB"}, "is not a folder"},
  };
  for (const auto& [flags, needle] : cases) {
    std::vector<std::string> argv = {ExecutableDir() + "/unipool-node", "--state-dir",
                                     dir.File("state"), "--pool-size", "8MiB"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    RunResult r = ::unipool::testing::Run(argv);
    EXPECT_EQ(r.exit_code, 2) << needle << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "unipool-node: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.File("ssd")));
    EXPECT_FALSE(std::filesystem::exists(dir.File("state")));
  }
}

}  // namespace
}  // namespace unipool::testing
