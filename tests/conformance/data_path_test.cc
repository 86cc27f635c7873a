// The data-path conformance suite: every case runs against every transport
// (transports.h), each with its own real cluster (a directory and three
// nodes as processes, LocalCluster) and a client in this process. The host
// runs it over TCP and shared memory (conformance_test.cc); the Soft-RoCE VM
// over RDMA RC and UC with injected losses (tests/rdma_vm). Bytes are
// compared with what was written, every one of them; errors must say what
// failed and never come with wrong bytes.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transport_test.h"
#include "transports.h"
#include "unipool/client.h"
#include "unipool/common/slab.h"
#include "unipool/platform/memory.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

// Reports the first few failures of a loop over many pages, counts them all.
class FailureLog {
 public:
  void Add(const std::string& what) {
    if (count_++ < 5) ADD_FAILURE() << what;
  }
  int count() const { return count_.load(); }

 private:
  std::atomic<int> count_{0};
};

template <typename T>
std::string Describe(const absl::StatusOr<T>& got) {
  return got.ok() ? "wrong bytes" : got.status().ToString();
}

class DataPathTest : public TransportTest {
 protected:
  // The MixedPages workload: page i of thread t.
  int PageCount() const { return setup().threads * setup().pages_per_thread; }
  std::string KeyOf(int t, int i) const {
    // Both shapes engines use: tensor names and KV-page hashes.
    if (i % 2 == 0) return absl::StrFormat("llama3-70b/layer.%d/attn.k#shard%d", i, t);
    return absl::StrFormat("kv:%016x", Mix(t * 100000 + i));
  }
  size_t SizeOf(int t, int i) const { return setup().page_size(t * 100000 + i); }
  // The pool bytes the workload's objects take (one copy each, in the
  // directory's allocation units).
  uint64_t WorkloadBytes() const {
    constexpr uint64_t kUnit = platform::kAllocationAlignment;
    uint64_t bytes = 0;
    for (int t = 0; t < setup().threads; ++t) {
      for (int i = 0; i < setup().pages_per_thread; ++i) {
        bytes += (SizeOf(t, i) + kUnit - 1) / kUnit * kUnit;
      }
    }
    return bytes;
  }
  void PutWorkload(int t, FailureLog& failures);
  void GetWorkload(int t, FailureLog& failures);
  // Every page of the workload reads back byte for byte, in batches;
  // returns how many did not.
  int VerifyAll();
};

// Puts: chunks of ten, even chunks one by one, odd chunks as one batch.
void DataPathTest::PutWorkload(int t, FailureLog& failures) {
  for (int i = 0; i < setup().pages_per_thread; i += 10) {
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> values;
    for (int j = i; j < std::min(i + 10, setup().pages_per_thread); ++j) {
      keys.push_back(KeyOf(t, j));
      values.push_back(PageBytes(keys.back(), SizeOf(t, j)));
    }
    if ((i / 10) % 2 == 0) {
      for (size_t j = 0; j < keys.size(); ++j) {
        absl::Status s = client_->Put(keys[j], values[j]);
        if (!s.ok()) failures.Add(keys[j] + ": " + s.ToString());
      }
    } else {
      std::vector<std::string_view> k(keys.begin(), keys.end());
      std::vector<std::span<const uint8_t>> v(values.begin(), values.end());
      for (const absl::Status& s : client_->BatchPut(k, v)) {
        if (!s.ok()) failures.Add(s.ToString());
      }
    }
  }
}

// Gets: single gets into a new vector and into a caller's buffer, alternating.
void DataPathTest::GetWorkload(int t, FailureLog& failures) {
  std::vector<uint8_t> buffer(setup().max_page_size);
  for (int i = 0; i < setup().pages_per_thread; ++i) {
    std::string key = KeyOf(t, i);
    std::vector<uint8_t> expected = PageBytes(key, SizeOf(t, i));
    if (i % 2 == 0) {
      auto got = client_->Get(key);
      if (!got.ok() || *got != expected) failures.Add(key + ": " + Describe(got));
    } else {
      auto n = client_->Get(key, buffer);
      if (!n.ok() || *n != expected.size() ||
          !std::equal(expected.begin(), expected.end(), buffer.begin())) {
        failures.Add(key + ": " + Describe(n));
      }
    }
  }
}

int DataPathTest::VerifyAll() {
  FailureLog bad;
  for (int t = 0; t < setup().threads; ++t) {
    for (int first = 0; first < setup().pages_per_thread; first += 50) {
      int last = std::min(first + 50, setup().pages_per_thread);
      std::vector<std::string> keys;
      for (int i = first; i < last; ++i) keys.push_back(KeyOf(t, i));
      std::vector<std::string_view> views(keys.begin(), keys.end());
      auto got = client_->BatchGet(views);
      for (int i = first; i < last; ++i) {
        const auto& page = got[i - first];
        if (!page.ok() || *page != PageBytes(keys[i - first], SizeOf(t, i))) {
          bad.Add(keys[i - first] + ": " + Describe(page));
        }
      }
    }
  }
  return bad.count();
}

TEST_P(DataPathTest, MixedPagesFromSeveralThreadsThenDirectoryCrash) {
  ASSERT_NO_FATAL_FAILURE(StartTransportCluster());
  FailureLog failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < setup().threads; ++t) {
    threads.emplace_back([&, t] {
      PutWorkload(t, failures);
      GetWorkload(t, failures);
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.count(), 0);
  EXPECT_EQ(VerifyAll(), 0);
  ExpectServedBy(setup(), client_->stats());
  // `used` below must be the objects' alone. The workload's client holds
  // pre-handed reservations for its next puts (ClientOptions::
  // prehanded_reservations): pool space the directory keeps, across a crash
  // too, until its deadline (--put-timeout after the commit that handed it
  // out), then reclaims. Compared with reservations out, `used` drops by
  // those whose deadline falls between the two states (the VM, slow, saw
  // 124 KiB). Closing the client gives its stock back; the few it dropped
  // unused past half their time are not given back and expire within
  // --put-timeout / 2. A new client, which puts nothing before the crash,
  // carries on through it.
  ASSERT_NO_FATAL_FAILURE(ReconnectClient());
  absl::StatusOr<PoolState> before;
  WaitUntil([&] {
    before = admin_->State();
    return !before.ok() || before->pending_puts == 0;
  });
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->objects, static_cast<uint64_t>(PageCount()));
  EXPECT_EQ(before->pending_puts, 0u) << "reservations out: `used` is not only objects";
  EXPECT_EQ(before->held, 0u);
  EXPECT_EQ(before->used, WorkloadBytes());
  for (const NodeState& node : before->nodes) EXPECT_GT(node.objects, 0u) << node.name;
  ExpectAdvertised(setup(), *before);

  // SIGKILL the directory and restart it on the same --db: the map comes back
  // from RocksDB, the nodes reconnect, and every object reads back identical.
  ASSERT_TRUE(cluster_->KillDirectory().ok());
  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, Patience()).ok());
  auto after = admin_->State();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->objects, before->objects);
  EXPECT_EQ(after->pending_puts, 0u);
  EXPECT_EQ(after->used, before->used);
  EXPECT_EQ(VerifyAll(), 0);

  // Immutable: a second put of a committed key is refused and changes nothing.
  std::string key = KeyOf(0, 0);
  auto other = PageBytes("something else", 4096);
  EXPECT_EQ(client_->Put(key, other).code(), absl::StatusCode::kAlreadyExists);
  auto still = client_->Get(key);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(*still, PageBytes(key, SizeOf(0, 0)));
  // ... unless asked to replace.
  ASSERT_TRUE(client_->Put(key, other, {.replace = true}).ok());
  EXPECT_EQ(*client_->Get(key), other);
}

// Sizes from 1 byte to 3 MiB, odd ones included.
size_t OddSize(int i) {
  static constexpr size_t kSizes[] = {1, 4096, 4097, 65536, 100003, 262144, 2 << 20, 3 << 20};
  return kSizes[i % std::size(kSizes)];
}

TEST_P(DataPathTest, OddSizesReadBackThreeWaysAndAgreeWithTcp) {
  ASSERT_NO_FATAL_FAILURE(StartTransportCluster());
  ClientOptions tcp_options;
  tcp_options.shm = false;
  tcp_options.rdma = RdmaPolicy::kOff;
  auto tcp = Connect(tcp_options, "tcp-peer");
  ASSERT_NE(tcp, nullptr);
  constexpr int kPages = 24;
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> pages;
  for (int i = 0; i < kPages; ++i) {
    keys.push_back(absl::StrFormat("odd/%d", i));
    pages.push_back(PageBytes(keys.back(), OddSize(i)));
  }
  // Half put one by one, half in one batch.
  for (int i = 0; i < kPages / 2; ++i) ASSERT_TRUE(client_->Put(keys[i], pages[i]).ok()) << i;
  std::vector<std::string_view> batch_keys(keys.begin() + kPages / 2, keys.end());
  std::vector<std::span<const uint8_t>> batch_values(pages.begin() + kPages / 2, pages.end());
  for (const absl::Status& s : client_->BatchPut(batch_keys, batch_values)) {
    ASSERT_TRUE(s.ok()) << s;
  }

  // Read back three ways, and over TCP.
  std::vector<std::string_view> all(keys.begin(), keys.end());
  for (int i = 0; i < kPages; ++i) {
    auto got = client_->Get(keys[i]);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == pages[i]) << keys[i];
  }
  auto vectors = client_->BatchGet(all);
  std::vector<std::vector<uint8_t>> buffers(kPages, std::vector<uint8_t>(3 << 20, 0xEE));
  std::vector<std::span<uint8_t>> into(buffers.begin(), buffers.end());
  auto sizes = client_->BatchGet(all, into);
  auto over_tcp = tcp->BatchGet(all);
  for (int i = 0; i < kPages; ++i) {
    ASSERT_TRUE(vectors[i].ok() && sizes[i].ok() && over_tcp[i].ok()) << keys[i];
    EXPECT_TRUE(*vectors[i] == pages[i]) << keys[i];
    ASSERT_EQ(*sizes[i], pages[i].size());
    EXPECT_TRUE(std::equal(pages[i].begin(), pages[i].end(), buffers[i].begin())) << keys[i];
    if (pages[i].size() < buffers[i].size()) {
      EXPECT_EQ(buffers[i][pages[i].size()], 0xEE) << "wrote past the object: " << keys[i];
    }
    EXPECT_TRUE(*over_tcp[i] == pages[i]) << keys[i];
  }
  // And the other way: what TCP writes, this transport reads.
  auto tcp_page = PageBytes("odd/from-tcp", 777777);
  ASSERT_TRUE(tcp->Put("odd/from-tcp", tcp_page).ok());
  auto got = client_->Get("odd/from-tcp");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == tcp_page);

  ExpectServedBy(setup(), client_->stats());
  EXPECT_EQ(tcp->stats().shm_requests, 0u);
  EXPECT_EQ(tcp->stats().transport, "tcp");
  auto status = admin_->State();
  ASSERT_TRUE(status.ok()) << status.status();
  ExpectAdvertised(setup(), *status);
}

TEST_P(DataPathTest, BatchesExistsRemoveAndErrors) {
  ASSERT_NO_FATAL_FAILURE(StartTransportCluster());
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
  EXPECT_EQ(after_remove->used - after_remove->held,
            used_before - 1000 * platform::RoundUp(4096, platform::kAllocationAlignment));
  EXPECT_EQ(client_->Get(k[0]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Remove(k[0]).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(client_->Get(k[1000]).ok());

  // Bad keys and values.
  EXPECT_EQ(client_->Put("", values[0]).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Put(std::string(1025, 'k'), values[0]).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Put("empty", {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_->Put(std::string(1024, 'k'), values[0]).ok());

  // Pool full (larger than any node's slab) is a clear error, and loses
  // nothing already stored.
  std::vector<uint8_t> huge(setup().pool_size + (60ull << 20), 1);
  EXPECT_EQ(client_->Put("too-big", huge).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*client_->Get(k[1500]), values[1500]);
}

size_t KilledNodePageSize(int i) { return PageSize(i, 4 << 10, 1 << 20); }

TEST_P(DataPathTest, KilledNodeGivesClearErrorsNeverWrongBytesThenRestarts) {
  ASSERT_NO_FATAL_FAILURE(StartTransportCluster());
  // 60 pages of mixed sizes spread over the three nodes.
  constexpr int kPages = 60;
  std::vector<std::string> keys;
  for (int i = 0; i < kPages; ++i) {
    keys.push_back(absl::StrFormat("page-%d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), KilledNodePageSize(i))).ok());
  }
  // A reader runs while the node dies: it may see errors, never wrong bytes.
  std::atomic<bool> stop{false};
  std::atomic<int> good{0}, errors{0}, wrong{0};
  std::thread reader([&] {
    while (!stop.load()) {
      for (int i = 0; i < kPages && !stop.load(); ++i) {
        auto got = client_->Get(keys[i]);
        if (!got.ok()) {
          EXPECT_TRUE(got.status().code() == absl::StatusCode::kUnavailable ||
                      got.status().code() == absl::StatusCode::kNotFound)
              << got.status();
          errors++;
        } else if (*got == PageBytes(keys[i], KilledNodePageSize(i))) {
          good++;
        } else {
          wrong++;
        }
      }
    }
  });
  auto wait_for = [&](const std::atomic<int>& count) {
    absl::Time deadline = absl::Now() + Patience();
    while (count.load() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  };
  wait_for(good);
  std::string victim = cluster_->node_address(1);
  std::vector<std::string> where;  // each page's node, before the kill
  for (int i = 0; i < kPages; ++i) {
    auto info = admin_->Stat(keys[i]);
    ASSERT_TRUE(info.ok()) << info.status();
    where.push_back(info->copies[0].node_address);
  }
  ASSERT_TRUE(cluster_->KillNode(1).ok());  // mid-run
  wait_for(errors);
  stop = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(good.load(), 0);
  EXPECT_GT(errors.load(), 0) << "reads of the dead node's pages must fail";

  // The first get that finds the node unreachable tells the directory,
  // which probes the node and marks it down at once; its pages (no other
  // copy) are then misses, or Unavailable for a get that found the node
  // unreachable itself. Either way the error names the node.
  auto check = [&](const char* phase) {
    int on_victim = 0;
    for (int i = 0; i < kPages; ++i) {
      auto got = client_->Get(keys[i]);
      if (where[i] == victim) {
        ++on_victim;
        ASSERT_FALSE(got.ok()) << phase << ": " << keys[i] << " read from a dead node";
        EXPECT_TRUE(absl::IsUnavailable(got.status()) || absl::IsNotFound(got.status()))
            << got.status();
        EXPECT_NE(got.status().message().find(victim), std::string::npos) << got.status();
      } else {
        ASSERT_TRUE(got.ok()) << phase << ": " << got.status();
        EXPECT_EQ(*got, PageBytes(keys[i], KilledNodePageSize(i)));
      }
    }
    EXPECT_GT(on_victim, 0) << "placement should spread objects over all nodes";
  };
  check("just after the kill");
  ASSERT_TRUE(cluster_->WaitForNodeDown(1, Patience()).ok());
  check("after the node was marked down");

  // Puts keep working on the surviving nodes.
  for (int i = 0; i < 10; ++i) {
    std::string key = absl::StrFormat("after-%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, 64 << 10)).ok());
    EXPECT_NE(admin_->Stat(key)->copies[0].node_address, victim);
  }

  // The node comes back with a new (empty) slab: its old objects are gone
  // and say so, instead of returning whatever is in the new memory.
  ASSERT_TRUE(cluster_->RestartNode(1).ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, Patience()).ok());
  for (int i = 0; i < kPages; ++i) {
    auto got = client_->Get(keys[i]);
    if (got.ok()) {
      EXPECT_EQ(*got, PageBytes(keys[i], KilledNodePageSize(i)));
    } else {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << got.status();
    }
  }
}

// Flips one byte in the middle of the `length` bytes of `copy`, in its
// node's slab (a shared-memory object: LocalClusterOptions::shared_slabs),
// as failing memory or a stray write would. False when that slab cannot be
// opened.
bool DamageStoredCopy(const LocalCluster& cluster, uint64_t pool_size, const CopyLocation& copy,
                      uint64_t length) {
  int node = NodeIndex(cluster, copy.node_address);
  if (node < 0) return false;
  bool reused = false;
  auto slab = Slab::OpenShared(cluster.SlabName(node), pool_size, &reused);
  if (!slab.ok() || !reused || copy.offset + length > (*slab)->size()) return false;
  (*slab)->data()[copy.offset + length / 2] ^= 0x5a;
  return true;
}

TEST_P(DataPathTest, DamagedCopyIsDataLossOrReadFromAnotherCopy) {
  ASSERT_NO_FATAL_FAILURE(StartTransportCluster(/*shared_slabs=*/true));
  auto one = PageBytes("damaged/one-copy", 256 << 10);
  auto two = PageBytes("damaged/two-copies", 256 << 10);
  ASSERT_TRUE(client_->Put("damaged/one-copy", one).ok());
  ASSERT_TRUE(client_->Put("damaged/two-copies", two, {.replicas = 2}).ok());
  auto info_one = admin_->Stat("damaged/one-copy");
  auto info_two = admin_->Stat("damaged/two-copies");
  ASSERT_TRUE(info_one.ok() && info_two.ok());
  ASSERT_EQ(info_two->copies.size(), 2u);
  ASSERT_TRUE(DamageStoredCopy(*cluster_, setup().pool_size, info_one->copies[0], one.size()));
  // The first copy, which is read first (every node is on this host).
  ASSERT_TRUE(DamageStoredCopy(*cluster_, setup().pool_size, info_two->copies[0], two.size()));

  // The only copy is damaged: DataLoss naming the key, never the bytes.
  auto got = client_->Get("damaged/one-copy");
  ASSERT_FALSE(got.ok()) << "damaged bytes were returned";
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_NE(got.status().message().find("damaged/one-copy"), std::string::npos) << got.status();
  std::vector<uint8_t> buffer(one.size());
  EXPECT_EQ(client_->Get("damaged/one-copy", buffer).status().code(), absl::StatusCode::kDataLoss);

  // Another copy is intact: it is read instead.
  uint64_t fallbacks = client_->stats().replica_fallbacks;
  auto second = client_->Get("damaged/two-copies");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(*second == two);
  EXPECT_GT(client_->stats().replica_fallbacks, fallbacks);
}

INSTANTIATE_TEST_SUITE_P(Transports, DataPathTest, ::testing::ValuesIn(TransportsUnderTest()),
                         TransportTestName);

}  // namespace
}  // namespace unipool::testing
