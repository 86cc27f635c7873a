// The store end to end over TCP, with real processes on loopback: one
// directory and three nodes started by LocalCluster, several client threads.
#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/integration/test_pages.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using ::unipool::testing::PageBytes;
using ::unipool::testing::PageSize;

constexpr int kThreads = 4;
constexpr int kObjectsPerThread = 250;  // 1,000 in all
constexpr size_t kMinPage = 4 << 10;
constexpr size_t kMaxPage = 8 << 20;

std::string WorkDir(const std::string& test) {
  auto dir =
      std::filesystem::temp_directory_path() / absl::StrFormat("unipool-%s-%d", test, getpid());
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::unique_ptr<Client> ConnectTo(const LocalCluster& cluster) {
  ClientOptions options;
  options.directory = cluster.directory_address();
  options.name = "store-test";
  // This suite is the TCP data path end to end: the nodes are on this
  // machine, so without this the client would map their slabs (tests/shm).
  options.shm = false;
  auto client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

std::string KeyOf(int thread, int i) {
  // Both shapes engines use: tensor names and KV-page hashes.
  if (i % 2 == 0) return absl::StrFormat("llama3-70b/layer.%d/attn.k#shard%d", i, thread);
  return absl::StrFormat("kv:%016x", ::unipool::testing::Mix(thread * 100000 + i));
}

size_t SizeOf(int thread, int i) { return PageSize(thread * 100000 + i, kMinPage, kMaxPage); }

// Every object of the workload reads back byte for byte; returns how many
// did not (with the first failure reported).
int VerifyAll(Client& client) {
  int bad = 0;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<std::string> keys;
    for (int i = 0; i < kObjectsPerThread; ++i) keys.push_back(KeyOf(t, i));
    std::vector<std::string_view> views(keys.begin(), keys.end());
    auto got = client.BatchGet(views);
    for (int i = 0; i < kObjectsPerThread; ++i) {
      if (!got[i].ok() || *got[i] != PageBytes(keys[i], SizeOf(t, i))) {
        if (bad++ == 0) {
          ADD_FAILURE() << keys[i] << ": "
                        << (got[i].ok() ? "wrong bytes" : got[i].status().ToString());
        }
      }
    }
  }
  return bad;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 3;
    options.pool_size = 640ull << 20;  // 1.9 GiB in all; the workload is ~1.1 GiB
    options.work_dir = WorkDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto cluster = LocalCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    client_ = ConnectTo(*cluster_);
    ASSERT_NE(client_, nullptr);
    admin_ = std::make_unique<Admin>(*client_);
  }
  void TearDown() override {
    admin_.reset();
    client_.reset();
    std::string dir = cluster_ ? cluster_->work_dir() : "";
    cluster_.reset();
    if (!HasFailure() && !dir.empty()) std::filesystem::remove_all(dir);
  }

  // Stores the whole workload from kThreads threads, using single puts and
  // batches, and reads it back from the same threads in three ways.
  void RunWorkload() {
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Puts: even chunks one by one, odd chunks as batches of 10.
        for (int i = 0; i < kObjectsPerThread; i += 10) {
          std::vector<std::string> keys;
          std::vector<std::vector<uint8_t>> values;
          for (int j = i; j < i + 10; ++j) {
            keys.push_back(KeyOf(t, j));
            values.push_back(PageBytes(keys.back(), SizeOf(t, j)));
          }
          if ((i / 10) % 2 == 0) {
            for (size_t j = 0; j < keys.size(); ++j) {
              absl::Status s = client_->Put(keys[j], values[j]);
              if (!s.ok()) {
                failures++;
                ADD_FAILURE() << keys[j] << ": " << s;
              }
            }
          } else {
            std::vector<std::string_view> k(keys.begin(), keys.end());
            std::vector<std::span<const uint8_t>> v(values.begin(), values.end());
            for (const absl::Status& s : client_->BatchPut(k, v)) {
              if (!s.ok()) {
                failures++;
                ADD_FAILURE() << s;
              }
            }
          }
        }
        // Gets: single into a vector, single into a caller buffer, batch.
        std::vector<uint8_t> buffer(kMaxPage);
        for (int i = 0; i < kObjectsPerThread; ++i) {
          std::string key = KeyOf(t, i);
          std::vector<uint8_t> expected = PageBytes(key, SizeOf(t, i));
          if (i % 2 == 0) {
            auto got = client_->Get(key);
            if (!got.ok() || *got != expected) {
              failures++;
              ADD_FAILURE() << key << ": " << (got.ok() ? "wrong bytes" : got.status().ToString());
            }
          } else {
            auto n = client_->Get(key, buffer);
            if (!n.ok() || *n != expected.size() ||
                !std::equal(expected.begin(), expected.end(), buffer.begin())) {
              failures++;
              ADD_FAILURE() << key << ": " << (n.ok() ? "wrong bytes" : n.status().ToString());
            }
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_EQ(failures.load(), 0);
    EXPECT_EQ(VerifyAll(*client_), 0);
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Admin> admin_;  // uses client_
};

TEST_F(StoreTest, ThousandMixedObjectsFromSeveralThreadsThenDirectoryCrash) {
  RunWorkload();
  EXPECT_EQ(client_->stats().transport, "tcp");
  EXPECT_EQ(client_->stats().shm_requests, 0u);
  auto before = admin_->State();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->objects, static_cast<uint64_t>(kThreads * kObjectsPerThread));
  for (const NodeState& node : before->nodes) EXPECT_GT(node.objects, 0u) << node.name;

  // SIGKILL the directory and restart it on the same --db: the map comes back
  // from RocksDB, the nodes reconnect, and every object reads back identical.
  ASSERT_TRUE(cluster_->KillDirectory().ok());
  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, absl::Seconds(20)).ok());
  auto after = admin_->State();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->objects, before->objects);
  EXPECT_EQ(after->used, before->used);
  EXPECT_EQ(VerifyAll(*client_), 0);

  // Immutable: a second put of a committed key is refused and changes nothing.
  std::string key = KeyOf(0, 0);
  auto other = PageBytes("something else", 4096);
  EXPECT_EQ(client_->Put(key, other).code(), absl::StatusCode::kAlreadyExists);
  auto still = client_->Get(key);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(*still, PageBytes(key, SizeOf(0, 0)));
  // ... unless asked to replace.
  ASSERT_TRUE(client_->Put(key, other, {.replace = true}).ok());
  EXPECT_EQ(*client_->Get(key), other);
}

TEST_F(StoreTest, KilledNodeGivesClearErrorsNeverWrongBytes) {
  // 60 objects of mixed sizes spread over the three nodes.
  std::vector<std::string> keys;
  for (int i = 0; i < 60; ++i) {
    keys.push_back(absl::StrFormat("page-%d", i));
    auto bytes = PageBytes(keys.back(), PageSize(i, kMinPage, 1 << 20));
    ASSERT_TRUE(client_->Put(keys.back(), bytes).ok());
  }
  std::string victim = cluster_->node_address(1);
  ASSERT_TRUE(cluster_->KillNode(1).ok());

  // Before the directory notices, a get fails Unavailable; once the node is
  // marked down, its objects (no other copy) are not found. Either way the
  // error names the node.
  auto check = [&](const char* phase, absl::StatusCode expected) {
    int on_victim = 0;
    for (int i = 0; i < 60; ++i) {
      auto info = admin_->Stat(keys[i]);
      ASSERT_TRUE(info.ok()) << info.status();
      auto got = client_->Get(keys[i]);
      if (info->copies[0].node_address == victim) {
        ++on_victim;
        ASSERT_FALSE(got.ok()) << phase << ": " << keys[i] << " read from a dead node";
        EXPECT_EQ(got.status().code(), expected) << got.status();
        EXPECT_NE(got.status().message().find(victim), std::string::npos) << got.status();
      } else {
        ASSERT_TRUE(got.ok()) << phase << ": " << got.status();
        EXPECT_EQ(*got, PageBytes(keys[i], PageSize(i, kMinPage, 1 << 20)));
      }
    }
    EXPECT_GT(on_victim, 0) << "placement should spread objects over all nodes";
  };
  check("before the directory noticed", absl::StatusCode::kUnavailable);
  ASSERT_TRUE(cluster_->WaitForNodeDown(1, absl::Seconds(10)).ok());
  check("after the node was marked down", absl::StatusCode::kNotFound);

  // Puts keep working on the surviving nodes.
  for (int i = 0; i < 10; ++i) {
    std::string key = absl::StrFormat("after-%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, 64 << 10)).ok());
    EXPECT_NE(admin_->Stat(key)->copies[0].node_address, victim);
  }

  // The node comes back with a new (empty) slab: its old objects are gone
  // and say so, instead of returning whatever is in the new memory.
  ASSERT_TRUE(cluster_->RestartNode(1).ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, absl::Seconds(20)).ok());
  for (int i = 0; i < 60; ++i) {
    auto got = client_->Get(keys[i]);
    if (got.ok()) {
      EXPECT_EQ(*got, PageBytes(keys[i], PageSize(i, kMinPage, 1 << 20)));
    } else {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << got.status();
    }
  }
}

TEST_F(StoreTest, BatchesExistsRemoveAndErrors) {
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> values;
  for (int i = 0; i < 2000; ++i) {
    keys.push_back(absl::StrFormat("prefix-block-%d", i));
    values.push_back(PageBytes(keys.back(), 4096));
  }
  std::vector<std::string_view> k(keys.begin(), keys.end());
  std::vector<std::span<const uint8_t>> v(values.begin(), values.end());
  uint64_t requests_before = client_->stats().directory_requests;
  for (const auto& s : client_->BatchPut(k, v)) ASSERT_TRUE(s.ok()) << s;
  // One batch of 2,000 = PutStart + PutCommit, not thousands of round trips.
  EXPECT_LE(client_->stats().directory_requests - requests_before, 2u);

  std::vector<std::string_view> probe = {k[0], "missing-key", k[1999]};
  std::vector<absl::StatusOr<bool>> exists = client_->BatchExists(probe);
  ASSERT_EQ(exists.size(), 3u);
  for (const auto& e : exists) ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(*exists[0]);
  EXPECT_FALSE(*exists[1]);
  EXPECT_TRUE(*exists[2]);
  // A bad key fails alone; the others in its batch are answered.
  std::vector<std::string_view> mixed = {k[0], "", k[1]};
  std::vector<absl::StatusOr<bool>> answered = client_->BatchExists(mixed);
  ASSERT_EQ(answered.size(), 3u);
  EXPECT_TRUE(answered[0].ok() && *answered[0]);
  EXPECT_EQ(answered[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(answered[2].ok() && *answered[2]);

  std::vector<std::vector<uint8_t>> out(3, std::vector<uint8_t>(4096));
  std::vector<std::span<uint8_t>> buffers(out.begin(), out.end());
  auto got = client_->BatchGet(probe, buffers);
  ASSERT_TRUE(got[0].ok());
  EXPECT_EQ(out[0], values[0]);
  EXPECT_EQ(got[1].status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(got[2].ok());
  EXPECT_EQ(out[2], values[1999]);

  // A too-small buffer is a clear error, not a truncated page.
  std::vector<uint8_t> small(100);
  auto too_small = client_->Get(k[5], small);
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kInvalidArgument);

  // Remove frees the space and the key (the space of an object read within
  // the read lease is held until the lease ends).
  auto used_before = admin_->State()->used;
  auto removed = client_->BatchRemove(std::vector<std::string_view>(k.begin(), k.begin() + 1000));
  for (const auto& s : removed) ASSERT_TRUE(s.ok()) << s;
  auto after_remove = admin_->State();
  EXPECT_EQ(after_remove->used - after_remove->held, used_before - 1000 * 4096);
  EXPECT_EQ(client_->Get(k[0]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Remove(k[0]).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(client_->Get(k[1000]).ok());

  // Bad keys and values.
  EXPECT_EQ(client_->Put("", values[0]).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Put(std::string(1025, 'k'), values[0]).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Put("empty", {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_->Put(std::string(1024, 'k'), values[0]).ok());

  // Pool full is a clear error, and loses nothing already stored.
  std::vector<uint8_t> huge(700ull << 20, 1);
  EXPECT_EQ(client_->Put("too-big", huge).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*client_->Get(k[1500]), values[1500]);
}

TEST(ClientConnectTest, UnreachableDirectoryIsUnavailable) {
  ClientOptions options;
  options.directory = "127.0.0.1:1";  // nothing listens on port 1
  auto client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace unipool
