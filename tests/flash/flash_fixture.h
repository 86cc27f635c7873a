// The flash tier's end-to-end fixture (docs/flash.md): one real directory
// and one real node process on loopback, the node's --ssd-dir a folder of
// real segment files kept across restarts of the node and of the cluster.
#ifndef UNIPOOL_TESTS_FLASH_FLASH_FIXTURE_H_
#define UNIPOOL_TESTS_FLASH_FLASH_FIXTURE_H_

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool {

using ::unipool::testing::PageBytes;

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

class FlashTierTest : public testing::ClusterTest {
 protected:
  // One node with `pool` bytes of memory and, unless `flash` is 0, that
  // much flash in a folder of its own (kept across restarts of the node).
  // `lease`: a lookup keeps its objects in memory that long (read back from
  // flash, a page needs room there). `auth`: a pool with a cluster key
  // (capabilities on every read, flash reads included).
  void StartFlashCluster(uint64_t pool, uint64_t flash, std::string_view prefix = "flash",
                         std::string lease = "1s",
                         testing::TestAuth auth = testing::TestAuth::kNone) {
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = pool;
    // Short leases: the workloads evict what they just read.
    options.directory_flags = {"--lease=" + lease, "--sync=everysec"};
    options.node_flags = {"--rdma=off"};
    if (flash > 0) {
      options.node_flags.push_back("--ssd-dir=" + ssd_dir_);
      options.node_flags.push_back(absl::StrFormat("--ssd-size=%u", flash));
    }
    ASSERT_NO_FATAL_FAILURE(StartCluster(prefix, options, auth));
    ASSERT_NO_FATAL_FAILURE(ConnectClient({.name = "flash-test"}));
  }

  NodeState Node() {
    absl::StatusOr<PoolState> state = admin_->State();
    EXPECT_TRUE(state.ok()) << state.status();
    if (!state.ok() || state->nodes.empty()) return {};
    return state->nodes[0];
  }

  // Waits until `objects` objects have a flash copy (the lifecycle worker
  // demoted them) and the node's writer wrote them.
  bool WaitFlashed(uint64_t objects) {
    return testing::WaitUntil([&] {
      NodeState n = Node();
      return n.flash.objects >= objects && n.counters.flash.objects >= objects;
    });
  }

  testing::TestDir ssd_{"flash-ssd"};
  // The node's --ssd-dir (kept across restarts of the node and clusters).
  std::string ssd_dir_ = ssd_.File("ssd");
};

inline bool RightBytes(const absl::StatusOr<std::vector<uint8_t>>& got, const std::string& key,
                       size_t size) {
  if (!got.ok()) {
    ADD_FAILURE() << key << ": " << got.status();
    return false;
  }
  if (*got != PageBytes(key, size)) {
    ADD_FAILURE() << key << ": WRONG BYTES";
    return false;
  }
  return true;
}

// Evicts `prefix` once nothing under it is leased; returns how many went.
inline uint64_t EvictWhenUnleased(Admin& admin, const std::string& prefix, uint64_t expected) {
  uint64_t total = 0;
  testing::WaitUntil([&] {
    absl::StatusOr<uint64_t> n = admin.Evict(prefix);
    if (n.ok()) total += *n;
    return total >= expected;
  });
  return total;
}

// Finds `key` in the segment files and flips a byte of its value.
inline bool FlipPageOnDisk(const std::string& dir, const std::string& key) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool flipped = false;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.find(".flash") == std::string::npos) continue;
    std::string path = dir + "/" + name;
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = bytes.find(key);
    if (at == std::string::npos) continue;
    int fd = open(path.c_str(), O_RDWR);
    if (fd < 0) break;
    off_t where = static_cast<off_t>(at + key.size() + 1000);
    char c = static_cast<char>(bytes[where] ^ 0x5a);
    flipped = pwrite(fd, &c, 1, where) == 1;
    close(fd);
    break;
  }
  closedir(d);
  return flipped;
}

}  // namespace unipool

#endif  // UNIPOOL_TESTS_FLASH_FLASH_FIXTURE_H_
