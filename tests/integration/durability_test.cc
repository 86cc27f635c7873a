// The directory's durability modes end to end, with real processes: eight
// client threads put while the directory is SIGKILLed mid-run; restarted on
// the same --db, it still has every put it acknowledged, byte for byte. Run
// with --sync=everysec (acknowledged once in RocksDB's log, fsync'ed in the
// background) and --sync=always (fsync'ed before the acknowledgement, as a
// group commit shared by the threads). A SIGKILL loses no page cache, so
// both modes must lose nothing here; they differ on a machine crash.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

namespace unipool {
namespace {

using ::unipool::testing::PageBytes;
using ::unipool::testing::PageSize;

constexpr int kThreads = 8;
// Acknowledged puts to wait for before the kill: enough for the threads to
// be committing together (group commits) when it lands.
constexpr int kPutsBeforeKill = 400;

std::string KeyOf(int thread, int i) { return absl::StrFormat("durable/t%d/%06d", thread, i); }
size_t SizeOf(int thread, int i) { return PageSize(thread * 1000003 + i, 4 << 10, 64 << 10); }

class DurabilityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 2;
    options.pool_size = 256ull << 20;
    options.directory_flags = {"--sync=" + GetParam()};
    auto cluster = testing::StartTestCluster("durability", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ClientOptions client_options;
    client_options.name = "durability-test";
    client_options.shm = false;
    auto client = testing::ConnectTo(*cluster_, client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void TearDown() override {
    client_.reset();
    cluster_.reset();
  }

  testing::TestCluster cluster_;
  std::unique_ptr<Client> client_;
};

TEST_P(DurabilityTest, EightThreadsPuttingLoseNoAcknowledgedPutAcrossADirectorySigkill) {
  std::atomic<int> acknowledged{0};
  std::atomic<bool> stop{false};
  // Per thread: how many puts were acknowledged (keys 0..n-1), and the put
  // that failed (the kill), if any: it may or may not have committed.
  std::vector<int> acked(kThreads, 0);
  std::vector<int> failed(kThreads, -1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        std::string key = KeyOf(t, i);
        if (!client_->Put(key, PageBytes(key, SizeOf(t, i))).ok()) {
          failed[t] = i;
          return;
        }
        acked[t] = i + 1;
        acknowledged++;
      }
    });
  }
  // Wait for the threads to be well under way (a condition, generously
  // bounded), then kill the directory under them.
  absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (acknowledged.load() < kPutsBeforeKill && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  bool got_going = acknowledged.load() >= kPutsBeforeKill;
  absl::Status killed = got_going ? cluster_->KillDirectory() : absl::OkStatus();
  stop = true;
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(got_going) << "the puts did not get going: " << acknowledged.load();
  ASSERT_TRUE(killed.ok()) << killed;

  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(2, absl::Seconds(30)).ok());
  int checked = 0;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<std::string> keys;
    for (int i = 0; i < acked[t]; ++i) keys.push_back(KeyOf(t, i));
    std::vector<std::string_view> views(keys.begin(), keys.end());
    auto got = client_->BatchGet(views);
    ASSERT_EQ(got.size(), keys.size());
    for (int i = 0; i < acked[t]; ++i) {
      ASSERT_TRUE(got[i].ok()) << keys[i] << " was acknowledged but is lost: " << got[i].status();
      ASSERT_EQ(*got[i], PageBytes(keys[i], SizeOf(t, i))) << keys[i] << ": wrong bytes";
      ++checked;
    }
    // The put cut by the kill: committed whole, or absent; never wrong bytes.
    if (failed[t] >= 0) {
      std::string key = KeyOf(t, failed[t]);
      auto cut = client_->Get(key);
      if (cut.ok()) {
        EXPECT_EQ(*cut, PageBytes(key, SizeOf(t, failed[t]))) << key << ": wrong bytes";
      } else {
        EXPECT_EQ(cut.status().code(), absl::StatusCode::kNotFound) << key << ": " << cut.status();
      }
    }
  }
  EXPECT_EQ(checked, acknowledged.load());
  int cut =
      static_cast<int>(std::count_if(failed.begin(), failed.end(), [](int i) { return i >= 0; }));
  std::printf("--sync=%s: %d puts acknowledged before the kill read back; %d cut by it\n",
              GetParam().c_str(), checked, cut);
  // The kill landed while the threads were putting.
  EXPECT_GE(cut, 1);
  // The restarted directory takes new puts.
  EXPECT_TRUE(client_->Put("durable/after", PageBytes("durable/after", 4096)).ok());
}

INSTANTIATE_TEST_SUITE_P(SyncModes, DurabilityTest, ::testing::Values("everysec", "always"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace unipool
