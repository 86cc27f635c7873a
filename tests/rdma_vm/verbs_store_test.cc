// The verbs transport for real, on Soft-RoCE inside the test VM (run through
// tests/rdma_vm/vm-run, which sets UNIPOOL_RDMA_DEVICE): a directory and three
// nodes with their slabs registered on rxe0, clients in RC mode and in forced
// UC mode (what Apple's Thunderbolt RDMA offers), 1,000 pages of mixed sizes
// from several threads, every byte compared; UC with injected losses so the
// retries run; a node killed mid-run gives clear errors, never wrong bytes.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/test_pages.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using ::unipool::testing::Mix;
using ::unipool::testing::PageBytes;

constexpr int kThreads = 3;
constexpr int kPages = 1002;  // 334 per thread

// Mixed 4 KiB .. 8 MiB, weighted the way KV caches are: mostly small pages,
// some large blocks (keeps the run near 200 MB for a TCG VM).
size_t SizeOf(int i) {
  uint64_t r = Mix(i + 12345);
  int bucket = static_cast<int>(r % 100);
  if (bucket < 80) return ::unipool::testing::PageSize(i, 4 << 10, 64 << 10);
  if (bucket < 95) return ::unipool::testing::PageSize(i, 64 << 10, 1 << 20);
  return ::unipool::testing::PageSize(i, 1 << 20, 8 << 20);
}

std::string KeyOf(int i) { return absl::StrFormat("kv/%d/%016x", i, Mix(i)); }

class VerbsStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* device = std::getenv("UNIPOOL_RDMA_DEVICE");
    ASSERT_NE(device, nullptr)
        << "no RDMA device named: run this test inside tests/rdma_vm/vm-run (ctest does)";
    mode_ = GetParam();
    LocalClusterOptions options;
    options.nodes = 3;
    options.pool_size = 160ull << 20;
    options.work_dir = (std::filesystem::temp_directory_path() /
                        absl::StrFormat("unipool-verbs-%s-%d", mode_, getpid()))
                           .string();
    std::filesystem::remove_all(options.work_dir);
    options.node_timeout = absl::Seconds(10);  // TCG is slow; heartbeats may lag
    if (mode_ == "uc") {
      // Lose every 29th UC read-to on the nodes and every 31st UC write of
      // the client, as a lossy Thunderbolt link would: retries must hide it.
      options.node_flags = {"--test-drop-uc-every=29"};
      setenv("UNIPOOL_TEST_DROP_UC_EVERY", "31", 1);
    } else {
      unsetenv("UNIPOOL_TEST_DROP_UC_EVERY");
    }
    auto cluster = LocalCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ClientOptions client_options;
    client_options.directory = cluster_->directory_address();
    auto policy = ParseRdmaPolicy(mode_);
    ASSERT_TRUE(policy.ok()) << policy.status();
    client_options.rdma = *policy;
    client_options.io_timeout = absl::Seconds(120);
    auto client = Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    admin_ = std::make_unique<Admin>(*client_);
  }
  void TearDown() override {
    admin_.reset();
    client_.reset();
    std::string dir = cluster_ ? cluster_->work_dir() : "";
    cluster_.reset();
    if (!HasFailure() && !dir.empty()) std::filesystem::remove_all(dir);
  }

  std::string mode_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Admin> admin_;  // uses client_
};

TEST_P(VerbsStoreTest, ThousandMixedPagesFromSeveralThreads) {
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    if (failures++ < 5) ADD_FAILURE() << what;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Puts: batches of 8 and single puts, alternating.
      for (int i = t; i < kPages; i += kThreads * 8) {
        std::vector<std::string> keys;
        std::vector<std::vector<uint8_t>> values;
        for (int j = i; j < std::min(kPages, i + kThreads * 8); j += kThreads) {
          keys.push_back(KeyOf(j));
          values.push_back(PageBytes(keys.back(), SizeOf(j)));
        }
        if ((i / (kThreads * 8)) % 2 == 0) {
          std::vector<std::string_view> k(keys.begin(), keys.end());
          std::vector<std::span<const uint8_t>> v(values.begin(), values.end());
          for (const auto& s : client_->BatchPut(k, v)) {
            if (!s.ok()) fail(s.ToString());
          }
        } else {
          for (size_t j = 0; j < keys.size(); ++j) {
            absl::Status s = client_->Put(keys[j], values[j]);
            if (!s.ok()) fail(keys[j] + ": " + s.ToString());
          }
        }
      }
      // Gets: single gets into vectors and caller buffers, then batches.
      std::vector<uint8_t> buffer(8 << 20);
      for (int i = t; i < kPages; i += kThreads) {
        std::string key = KeyOf(i);
        auto expected = PageBytes(key, SizeOf(i));
        if (i % 2 == 0) {
          auto got = client_->Get(key);
          if (!got.ok() || *got != expected) {
            fail(key + ": " + (got.ok() ? "wrong bytes" : got.status().ToString()));
          }
        } else {
          auto n = client_->Get(key, buffer);
          if (!n.ok() || *n != expected.size() ||
              !std::equal(expected.begin(), expected.end(), buffer.begin())) {
            fail(key + ": " + (n.ok() ? "wrong bytes" : n.status().ToString()));
          }
        }
      }
      for (int i = t; i < kPages; i += kThreads * 16) {
        std::vector<std::string> keys;
        for (int j = i; j < std::min(kPages, i + kThreads * 16); j += kThreads) {
          keys.push_back(KeyOf(j));
        }
        std::vector<std::string_view> k(keys.begin(), keys.end());
        auto got = client_->BatchGet(k);
        for (size_t j = 0; j < keys.size(); ++j) {
          int index = i + static_cast<int>(j) * kThreads;
          if (!got[j].ok() || *got[j] != PageBytes(keys[j], SizeOf(index))) {
            fail(keys[j] + ": " + (got[j].ok() ? "wrong bytes" : got[j].status().ToString()));
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  // The bytes went over RDMA in the requested mode, not over TCP.
  ClientStats stats = client_->stats();
  EXPECT_EQ(stats.transport, "rdma-" + mode_);
  EXPECT_GT(stats.rdma_requests, 0u);
  EXPECT_EQ(stats.tcp_requests, 0u);
  if (mode_ == "uc") EXPECT_GT(stats.rdma_retries, 0u) << "injected losses were not retried";
  auto status = admin_->State();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->objects, static_cast<uint64_t>(kPages));
  for (const NodeState& node : status->nodes) {
    EXPECT_NE(std::find(node.transports.begin(), node.transports.end(), "rdma-" + mode_),
              node.transports.end())
        << node.name << " does not advertise rdma-" << mode_;
  }
}

TEST_P(VerbsStoreTest, RegisteredBuffersMoveWithoutStaging) {
  // One registered arena: puts from it and gets into it are zero-copy.
  std::vector<uint8_t> arena(16 << 20);
  ASSERT_TRUE(client_->RegisterBuffer(arena.data(), arena.size()).ok());
  EXPECT_EQ(client_->RegisterBuffer(arena.data() + 4096, 4096).code(),
            absl::StatusCode::kAlreadyExists);
  std::vector<std::string> keys;
  std::vector<std::span<const uint8_t>> values;
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    keys.push_back(absl::StrFormat("registered/%d", i));
    auto bytes = PageBytes(keys.back(), 512 << 10);
    std::copy(bytes.begin(), bytes.end(), arena.begin() + at);
    values.emplace_back(arena.data() + at, bytes.size());
    at += bytes.size();
  }
  std::vector<std::string_view> k(keys.begin(), keys.end());
  for (const auto& s : client_->BatchPut(k, values)) ASSERT_TRUE(s.ok()) << s;
  std::fill(arena.begin(), arena.end(), 0);
  std::vector<std::span<uint8_t>> into;
  for (int i = 0; i < 16; ++i) into.emplace_back(arena.data() + i * (512 << 10), 512 << 10);
  auto got = client_->BatchGet(k, into);
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_TRUE(std::equal(into[i].begin(), into[i].end(), PageBytes(keys[i], 512 << 10).begin()))
        << keys[i];
  }
  EXPECT_TRUE(client_->UnregisterBuffer(arena.data()).ok());
  EXPECT_EQ(client_->UnregisterBuffer(arena.data()).code(), absl::StatusCode::kNotFound);
}

TEST_P(VerbsStoreTest, KilledNodeGivesClearErrorsNeverWrongBytes) {
  std::vector<std::string> keys;
  for (int i = 0; i < 90; ++i) {
    keys.push_back(KeyOf(100000 + i));
    ASSERT_TRUE(
        client_->Put(keys.back(), PageBytes(keys.back(), SizeOf(i) % (256 << 10) + 1)).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> good{0}, errors{0}, wrong{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (int i = 0; i < 90 && !stop.load(); ++i) {
        auto got = client_->Get(keys[i]);
        if (got.ok()) {
          if (*got == PageBytes(keys[i], SizeOf(i) % (256 << 10) + 1)) {
            good++;
          } else {
            wrong++;
          }
        } else {
          EXPECT_TRUE(got.status().code() == absl::StatusCode::kUnavailable ||
                      got.status().code() == absl::StatusCode::kNotFound)
              << got.status();
          errors++;
        }
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(500));
  std::string victim = cluster_->node_address(1);
  ASSERT_TRUE(cluster_->KillNode(1).ok());  // mid-run
  ASSERT_TRUE(cluster_->WaitForNodeDown(1, absl::Seconds(30)).ok());
  absl::SleepFor(absl::Milliseconds(500));
  stop = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(good.load(), 0);
  EXPECT_GT(errors.load(), 0) << "reads of the dead node's pages must fail";
  // After the death is known: the dead node's pages fail clearly, the rest read.
  for (int i = 0; i < 90; ++i) {
    auto info = admin_->Stat(keys[i]);
    ASSERT_TRUE(info.ok());
    auto got = client_->Get(keys[i]);
    if (info->copies[0].node_address == victim) {
      // A clear error: its only copy is on a node that is down.
      EXPECT_TRUE(got.status().code() == absl::StatusCode::kNotFound ||
                  got.status().code() == absl::StatusCode::kUnavailable)
          << got.status();
    } else {
      ASSERT_TRUE(got.ok()) << got.status();
    }
  }
}

// Pulling the cable: the VM's rxe0 runs on the veth "va"; taking it down
// makes the port leave ACTIVE, the nodes say so in their next heartbeat and
// the directory marks them down (within a beat, not the heartbeat timeout).
// Reads then fail clearly; with the link back, the same pages read back right.
TEST_P(VerbsStoreTest, RdmaLinkDropMarksNodesDownAndBack) {
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) {
    keys.push_back(KeyOf(200000 + i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), 64 << 10)).ok());
  }
  ASSERT_EQ(std::system("ip link set va down"), 0);
  absl::Status down = cluster_->WaitForNodeDown(0, absl::Seconds(8));  // node timeout is 10 s
  std::system("ip link set va up");
  ASSERT_TRUE(down.ok()) << down
                         << " (an RDMA link drop must be seen before the heartbeat timeout)";
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, absl::Seconds(60)).ok());
  // Back: every page reads right (a channel broken by the drop is replaced).
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<uint8_t>> got;
    for (int attempt = 0; attempt < 20; ++attempt) {
      got = client_->Get(key);
      if (got.ok()) break;
      EXPECT_NE(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
      absl::SleepFor(absl::Milliseconds(500));
    }
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    EXPECT_EQ(*got, PageBytes(key, 64 << 10)) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, VerbsStoreTest, ::testing::Values("rc", "uc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace unipool
