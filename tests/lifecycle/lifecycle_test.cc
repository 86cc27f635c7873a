// Pool lifecycle end to end, with real directory and node processes on
// loopback (LocalCluster): a pool filled past full, reads racing with the
// reuse of their memory, a node killed mid-workload with replicas, a node
// restarted with its slab intact or lost, and a drain under load.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/platform/memory.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

using ::unipool::testing::PageBytes;
using ::unipool::testing::PageSize;

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

class LifecycleTest : public testing::ClusterTest {
 protected:
  void StartLifecycleCluster(LocalClusterOptions options, ClientOptions client_options = {}) {
    ASSERT_NO_FATAL_FAILURE(StartCluster("lifecycle", options));
    client_options.name = "lifecycle-test";
    ASSERT_NO_FATAL_FAILURE(ConnectClient(client_options));
  }

  // Another client of the cluster, or nullptr (the test failed).
  std::unique_ptr<Client> Connect(ClientOptions options = {}) {
    options.name = "lifecycle-test";
    auto client = testing::ConnectTo(*cluster_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  const NodeState* NodeNamed(const PoolState& state, const std::string& name) {
    for (const NodeState& n : state.nodes) {
      if (n.name == name) return &n;
    }
    ADD_FAILURE() << "no node " << name;
    return nullptr;
  }
};

// Checks a get: right bytes, or (when allowed) a clear not-found. Returns
// false (after reporting) otherwise.
bool RightOrNotFound(const absl::StatusOr<std::vector<uint8_t>>& got, const std::string& key,
                     size_t size, bool must_exist) {
  if (got.ok()) {
    if (*got == PageBytes(key, size)) return true;
    ADD_FAILURE() << key << ": WRONG BYTES (" << got->size() << " bytes, expected " << size << ")";
    return false;
  }
  if (!must_exist && absl::IsNotFound(got.status())) return true;
  ADD_FAILURE() << key << ": " << got.status();
  return false;
}

// ------------------------------------------------------------ eviction

// Three 64 MiB nodes take ~3x their capacity in a mixed workload (4 KiB to
// 4 MiB pages and batches, some with 2 replicas). Pinned model weights and
// leased hot pages survive; no put fails while something is evictable; every
// get is right bytes or a clear not-found.
TEST_F(LifecycleTest, PoolFilledPastFullEvictsAndKeepsPinnedAndLeased) {
  LocalClusterOptions options;
  options.nodes = 3;
  options.pool_size = 64 * MiB;
  // A lease longer than the test: hot pages stay leased throughout.
  options.directory_flags = {"--lease=600s"};
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options));

  // Pinned weights (a prefix pinned before they exist) and a leased hot set.
  ASSERT_TRUE(admin_->Pin("weights/", /*prefix=*/true).ok());
  std::map<std::string, size_t> pinned, hot;
  for (int i = 0; i < 8; ++i) {
    std::string key = absl::StrFormat("weights/layer.%d", i);
    pinned[key] = 1 * MiB + i * 4096;
    ASSERT_TRUE(client_->Put(key, PageBytes(key, pinned[key])).ok());
  }
  for (int i = 0; i < 16; ++i) {
    std::string key = absl::StrFormat("hot/%d", i);
    hot[key] = 256 * KiB;
    ASSERT_TRUE(client_->Put(key, PageBytes(key, hot[key])).ok());
    ASSERT_TRUE(RightOrNotFound(client_->Get(key), key, hot[key], true));  // leases it
  }

  // The fill: ~570 MiB into a 192 MiB pool, single puts and batches of 8.
  std::map<std::string, size_t> written;
  uint64_t bytes = 0;
  int failed_puts = 0;
  int index = 0;
  std::mt19937_64 rng(42);
  while (bytes < 3 * options.pool_size * options.nodes) {
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> values;
    int batch = index % 3 == 0 ? 8 : 1;
    for (int j = 0; j < batch; ++j, ++index) {
      keys.push_back(absl::StrFormat("kv/%08d", index));
      size_t size = PageSize(index, 4 * KiB, 4 * MiB);
      values.push_back(PageBytes(keys.back(), size));
      written[keys.back()] = size;
      bytes += size;
    }
    std::vector<std::string_view> k(keys.begin(), keys.end());
    std::vector<std::span<const uint8_t>> v(values.begin(), values.end());
    PutOptions put_options;
    put_options.replicas = index % 5 == 0 ? 2 : 1;
    for (const absl::Status& s : client_->BatchPut(k, v, put_options)) {
      if (!s.ok()) {
        ++failed_puts;
        ADD_FAILURE() << "put failed while evictable data exists: " << s;
      }
    }
    // Now and then read something recent or old: right bytes or not found.
    if (index % 25 == 0) {
      std::string key = absl::StrFormat("kv/%08d", rng() % index);
      RightOrNotFound(client_->Get(key), key, written[key], false);
    }
  }
  EXPECT_EQ(failed_puts, 0);

  absl::StatusOr<PoolState> state = admin_->State();
  ASSERT_TRUE(state.ok());
  EXPECT_GT(state->evictions, 0u);
  EXPECT_EQ(state->pinned, pinned.size());
  EXPECT_GE(state->leased, hot.size());
  EXPECT_LE(state->used, state->capacity);
  uint64_t node_evictions = 0;
  for (const NodeState& n : state->nodes) node_evictions += n.evictions;
  EXPECT_GE(node_evictions, state->evictions);
  std::printf(
      "[ measured ] %d puts (%.0f MiB) into a %.0f MiB pool: %llu evictions, %llu objects "
      "left, %.0f MiB used\n",
      index, bytes / double(MiB), state->capacity / double(MiB),
      static_cast<unsigned long long>(state->evictions),
      static_cast<unsigned long long>(state->objects), state->used / double(MiB));

  // Pinned and leased objects all survived, byte for byte.
  for (const auto& [key, size] : pinned)
    EXPECT_TRUE(RightOrNotFound(client_->Get(key), key, size, true));
  for (const auto& [key, size] : hot)
    EXPECT_TRUE(RightOrNotFound(client_->Get(key), key, size, true));
  // Everything else: right bytes or a clear not-found, in batches.
  int found = 0, not_found = 0;
  std::vector<std::string> keys;
  for (const auto& [key, size] : written) keys.push_back(key);
  for (size_t first = 0; first < keys.size(); first += 64) {
    std::vector<std::string_view> chunk(keys.begin() + first,
                                        keys.begin() + std::min(keys.size(), first + 64));
    auto got = client_->BatchGet(chunk);
    for (size_t i = 0; i < chunk.size(); ++i) {
      std::string key(chunk[i]);
      if (RightOrNotFound(got[i], key, written[key], false)) (got[i].ok() ? found : not_found)++;
    }
  }
  EXPECT_GT(found, 0);
  EXPECT_GT(not_found, 0);
  std::printf("[ measured ] after the fill: %d objects readable, %d evicted (not found)\n", found,
              not_found);

  // Evict by prefix from the SDK: pinned survive.
  auto evicted = admin_->Evict("");
  ASSERT_TRUE(evicted.ok()) << evicted.status();
  for (const auto& [key, size] : pinned)
    EXPECT_TRUE(RightOrNotFound(client_->Get(key), key, size, true));
  ASSERT_TRUE(admin_->Unpin("weights/", true).ok());
  EXPECT_TRUE(absl::IsNotFound(admin_->Unpin("weights/", true)));
}

// ------------------------------------------------------------ read races

// The race a one-sided read can lose: it holds a location, the object is
// removed or evicted, its memory reused by another object, then the read
// happens. Forced
// here with a client that trusts cached locations for an hour on a directory
// without leases: the get reads the new object's bytes at the old place,
// rejects them by checksum, asks the directory again and says not-found.
TEST_F(LifecycleTest, ReadRacingWithReuseNeverReturnsTheNewBytes) {
  LocalClusterOptions options;
  options.nodes = 1;  // one slab: a freed extent is where the next put goes
  options.pool_size = 16 * MiB;
  options.directory_flags = {"--lease=0s"};
  // The writer reserves each put when it starts (no pre-handed stock, which
  // was reserved before the remove), so the new object takes the freed place.
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options, {.prehanded_reservations = false}));
  ClientOptions trusting;
  trusting.location_cache_ttl = absl::Hours(1);
  std::unique_ptr<Client> reader = Connect(trusting);
  ASSERT_NE(reader, nullptr);

  const size_t size = 1 * MiB;
  for (int round = 0; round < 5; ++round) {
    std::string old_key = absl::StrFormat("old/%d", round);
    std::string new_key = absl::StrFormat("new/%d", round);
    ASSERT_TRUE(client_->Put(old_key, PageBytes(old_key, size)).ok());
    ASSERT_TRUE(RightOrNotFound(reader->Get(old_key), old_key, size, true));  // cached now
    auto before = admin_->Stat(old_key);
    ASSERT_TRUE(before.ok());
    if (round % 2 == 0) {
      ASSERT_TRUE(client_->Remove(old_key).ok());
    } else {
      auto evicted = admin_->Evict(old_key);  // by the directory, not the reader
      ASSERT_TRUE(evicted.ok() && *evicted == 1) << evicted.status();
    }
    ASSERT_TRUE(client_->Put(new_key, PageBytes(new_key, size)).ok());
    auto reused = admin_->Stat(new_key);
    ASSERT_TRUE(reused.ok());
    ASSERT_EQ(reused->copies[0].node_address, before->copies[0].node_address);
    ClientStats stats_before = reader->stats();
    auto got = reader->Get(old_key);
    // Not the new object's bytes: not found.
    ASSERT_TRUE(absl::IsNotFound(got.status()))
        << (got.ok() ? (*got == PageBytes(new_key, size) ? "THE NEW OBJECT'S BYTES" : "some bytes")
                     : got.status().ToString());
    ClientStats stats_after = reader->stats();
    EXPECT_EQ(stats_after.location_cache_hits, stats_before.location_cache_hits + 1);
    EXPECT_EQ(stats_after.stale_cached_reads, stats_before.stale_cached_reads + 1);
    EXPECT_EQ(stats_after.checksum_failures, stats_before.checksum_failures + 1);
    // The reader's next get of the new key is right.
    ASSERT_TRUE(RightOrNotFound(reader->Get(new_key), new_key, size, true));
    ASSERT_TRUE(client_->Remove(new_key).ok());
  }
}

// The same race under load: a writer keeps removing objects and putting new
// ones of the same size into the same memory while readers with long-trusted
// cached locations keep reading objects old and new. Every get is the
// object's own bytes or not-found, never another's.
TEST_F(LifecycleTest, ConcurrentReuseUnderReadersNeverLeaksOtherBytes) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 16 * MiB;
  options.directory_flags = {"--lease=0s"};
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options));
  const size_t size = 2 * MiB;  // 8 slots: constant reuse, long reads
  constexpr int kGenerations = 150;
  std::atomic<int> latest{-1};
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0}, right{0}, missing{0};
  auto key_of = [](int g) { return absl::StrFormat("gen/%d", g); };
  std::thread writer([&] {
    std::unique_ptr<Client> w = Connect();
    for (int g = 0; g < kGenerations; ++g) {
      std::string key = key_of(g);
      absl::Status s = w->Put(key, PageBytes(key, size));
      if (!s.ok()) ADD_FAILURE() << key << ": " << s;
      latest = g;
      if (g >= 4) (void)w->Remove(key_of(g - 4));
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      ClientOptions trusting;
      trusting.location_cache_ttl = absl::Hours(1);
      std::unique_ptr<Client> c = Connect(trusting);
      std::mt19937 rng(r);
      while (!done) {
        int last = latest.load();
        if (last < 0) continue;
        int g = std::max(0, last - static_cast<int>(rng() % 8));
        std::string key = key_of(g);
        auto got = c->Get(key);
        if (got.ok()) {
          if (*got == PageBytes(key, size)) {
            ++right;
          } else {
            ++wrong;
            ADD_FAILURE() << key << ": WRONG BYTES";
          }
        } else if (absl::IsNotFound(got.status())) {
          ++missing;
        } else {
          ADD_FAILURE() << key << ": " << got.status();
        }
      }
      ClientStats s = c->stats();
      std::printf(
          "[ measured ] reader %d: %llu cache hits, %llu stale cached reads, %llu "
          "checksum failures caught\n",
          r, static_cast<unsigned long long>(s.location_cache_hits),
          static_cast<unsigned long long>(s.stale_cached_reads),
          static_cast<unsigned long long>(s.checksum_failures));
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(right.load(), 0);
  std::printf("[ measured ] %d right, %d not found, %d wrong\n", right.load(), missing.load(),
              wrong.load());
}

// With leases on (the default), a removed object's memory is not reused
// while a reader may still be reading it.
TEST_F(LifecycleTest, LeasedMemoryIsNotReused) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 16 * MiB;
  options.directory_flags = {"--lease=600s"};
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options));
  const size_t size = 1 * MiB;
  std::unique_ptr<Client> reader = Connect();
  ASSERT_TRUE(client_->Put("a", PageBytes("a", size)).ok());
  ASSERT_TRUE(RightOrNotFound(reader->Get("a"), "a", size, true));  // leased, cached
  ASSERT_TRUE(client_->Remove("a").ok());
  for (int i = 0; i < 8; ++i) {
    std::string key = absl::StrFormat("b%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, size)).ok());
  }
  auto state = admin_->State();
  ASSERT_TRUE(state.ok());
  // (Reservations the client holds for its next 1 MiB puts use space too.)
  EXPECT_EQ(state->used, (9 + state->pending_puts) * size)
      << "the removed object's memory is still held";
  // The reader, inside its lease, still reads the object's own intact bytes
  // from its cached location (staleness bounded by the lease), never
  // another object's; the client that removed it forgot it at once.
  EXPECT_TRUE(RightOrNotFound(reader->Get("a"), "a", size, true));
  EXPECT_TRUE(absl::IsNotFound(client_->Get("a").status()));
}

// ------------------------------------------------------------ node loss

// SIGKILL one of three nodes while writers put objects with 2 replicas and
// readers read them: every committed object stays readable with the right
// bytes, during and after the loss, and after the node comes back empty.
TEST_F(LifecycleTest, KilledNodeLosesNothingThatHadAReplica) {
  LocalClusterOptions options;
  options.nodes = 3;
  options.pool_size = 128 * MiB;
  options.node_timeout = absl::Seconds(2);
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options));
  std::mutex mu;
  std::map<std::string, size_t> committed;
  std::atomic<bool> killed{false};
  std::atomic<int> failed_puts{0}, failed_gets{0}, wrong{0};
  auto write = [&](int t) {
    std::unique_ptr<Client> c = Connect();
    PutOptions put_options;
    put_options.replicas = 2;
    for (int i = 0; i < 120; ++i) {
      std::string key = absl::StrFormat("t%d/%d", t, i);
      size_t size = PageSize(t * 1000 + i, 4 * KiB, 1 * MiB);
      absl::Status s = c->Put(key, PageBytes(key, size), put_options);
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        committed[key] = size;
      } else {
        ++failed_puts;  // allowed: not committed (e.g. while the node dies)
      }
      // Read back something committed: it must never fail.
      std::string probe;
      size_t probe_size = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        auto it = committed.lower_bound(absl::StrFormat("t%d/", t));
        if (it != committed.end() && it->first.starts_with(absl::StrFormat("t%d/", t))) {
          std::advance(it, i % std::max<size_t>(1, std::min<size_t>(committed.size(), 8)));
          if (it != committed.end()) {
            probe = it->first;
            probe_size = it->second;
          }
        }
      }
      if (!probe.empty()) {
        auto got = c->Get(probe);
        if (!got.ok()) {
          ++failed_gets;
          ADD_FAILURE() << probe << " (committed): " << got.status();
        } else if (*got != PageBytes(probe, probe_size)) {
          ++wrong;
          ADD_FAILURE() << probe << ": WRONG BYTES";
        }
      }
      if (t == 0 && i == 40) {
        ASSERT_TRUE(cluster_->KillNode(1).ok());
        killed = true;
      }
    }
  };
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) writers.emplace_back(write, t);
  for (auto& w : writers) w.join();
  ASSERT_TRUE(killed);
  ASSERT_TRUE(cluster_->WaitForNodeDown(1, absl::Seconds(20)).ok());

  auto verify_all = [&](const char* when) {
    int bad = 0;
    for (const auto& [key, size] : committed) {
      auto got = client_->Get(key);
      if (!got.ok() || *got != PageBytes(key, size)) {
        if (bad++ < 5) {
          ADD_FAILURE() << when << ": " << key << ": "
                        << (got.ok() ? "WRONG BYTES" : got.status().ToString());
        }
      }
    }
    return bad;
  };
  EXPECT_EQ(verify_all("node down"), 0);
  EXPECT_EQ(failed_gets.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  std::printf(
      "[ measured ] %zu objects committed with 2 replicas, %d puts failed around the kill "
      "(not committed), 0 committed objects lost\n",
      committed.size(), failed_puts.load());
  // Exists agrees: every committed object has a live copy.
  std::vector<std::string> keys;
  for (const auto& [key, size] : committed) keys.push_back(key);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<absl::StatusOr<bool>> exists = client_->BatchExists(views);
  long live = 0;
  for (const auto& e : exists) {
    ASSERT_TRUE(e.ok()) << e.status();
    live += *e ? 1 : 0;
  }
  EXPECT_EQ(live, static_cast<long>(keys.size()));

  // The node comes back with a new (empty) slab: its copies are dropped, the
  // objects keep their other copy.
  ASSERT_TRUE(cluster_->RestartNode(1).ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, absl::Seconds(20)).ok());
  EXPECT_EQ(verify_all("node back, slab lost"), 0);
  auto state = admin_->State();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->objects, committed.size());
  const NodeState* back = NodeNamed(*state, cluster_->node_name(1));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->objects, 0u);
  EXPECT_EQ(back->used, 0u);
}

// A node process killed and restarted on a machine that kept running finds
// its slab intact (shared memory): its pages are verified and readmitted, a
// page damaged meanwhile is dropped (not-found, never wrong bytes), and a
// node whose slab is lost comes back empty.
TEST_F(LifecycleTest, RestartedNodeWithItsSlabIsVerifiedAndReadmitted) {
  LocalClusterOptions options;
  options.nodes = 2;
  options.pool_size = 32 * MiB;
  options.node_timeout = absl::Seconds(2);
  options.shared_slabs = true;
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options));
  // Everything on node 0: node 1 drains while the objects are put.
  ASSERT_TRUE(admin_->Drain(cluster_->node_name(1)).ok());
  std::map<std::string, size_t> objects;
  for (int i = 0; i < 20; ++i) {
    std::string key = absl::StrFormat("page/%d", i);
    objects[key] = PageSize(i, 4 * KiB, 512 * KiB);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, objects[key])).ok());
  }
  ASSERT_TRUE(admin_->Undrain(cluster_->node_name(1)).ok());
  auto damaged = admin_->Stat("page/7");
  ASSERT_TRUE(damaged.ok());

  ASSERT_TRUE(cluster_->KillNode(0).ok());
  ASSERT_TRUE(cluster_->WaitForNodeDown(0, absl::Seconds(20)).ok());
  // Unreadable now: a miss, or Unavailable when the get itself found the
  // node unreachable (a cached location).
  for (const auto& [key, size] : objects) {
    auto got = client_->Get(key);
    EXPECT_TRUE(absl::IsNotFound(got.status()) || absl::IsUnavailable(got.status()))
        << key << ": " << got.status();
  }
  // While the process is down its memory is damaged at one page (the test
  // plays a faulty DIMM, or a writer that went astray).
  {
    std::string shm = absl::StrFormat("/unipool-%d-%s", getpid(), cluster_->node_name(0));
    int fd = shm_open(shm.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0) << shm;
    // Find the page's offset: Stat has no offset, so locate its bytes.
    off_t total = lseek(fd, 0, SEEK_END);
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    std::vector<uint8_t> bytes = PageBytes("page/7", objects["page/7"]);
    auto* begin = static_cast<uint8_t*>(p);
    auto* at = std::search(begin, begin + total, bytes.begin(), bytes.begin() + 4096);
    ASSERT_NE(at, begin + total);
    at[100] ^= 0xff;
    munmap(p, total);
    close(fd);
  }
  ASSERT_TRUE(cluster_->RestartNode(0).ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(2, absl::Seconds(20)).ok());
  // Verification drops the damaged page; every other page is readmitted.
  EXPECT_TRUE(testing::WaitUntil([&] {
    auto e = client_->Exists("page/7");
    return e.ok() && !*e;
  })) << "the damaged page was not dropped";
  for (const auto& [key, size] : objects) {
    auto got = client_->Get(key);
    if (key == "page/7") {
      EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
    } else {
      EXPECT_TRUE(RightOrNotFound(got, key, size, true));
    }
  }
  auto state = admin_->State();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->objects, objects.size() - 1);

  // Now the machine "reboots": the slab is lost, and so are its pages.
  ASSERT_TRUE(cluster_->KillNode(0).ok());
  // Until the directory has seen it down, "up" below could still be the old
  // process's registration, before the new slab's one drops its objects.
  ASSERT_TRUE(cluster_->WaitForNodeDown(0, absl::Seconds(20)).ok());
  ASSERT_TRUE(cluster_->DropSlab(0).ok());
  ASSERT_TRUE(cluster_->RestartNode(0).ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(2, absl::Seconds(20)).ok());
  for (const auto& [key, size] : objects) {
    auto got = client_->Get(key);
    EXPECT_TRUE(absl::IsNotFound(got.status())) << key << ": " << got.status();
  }
  state = admin_->State();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->objects, 0u);
  EXPECT_EQ(state->used, 0u);
}

// ------------------------------------------------------------ drain

// Drain a node while readers keep reading every object: no get fails, the
// node ends empty, the objects and the pool's accounting are unchanged, and
// the bytes moved node to node. Undrain takes it back.
TEST_F(LifecycleTest, DrainUnderLoadFailsNoGetAndEmptiesTheNode) {
  LocalClusterOptions options;
  options.nodes = 3;
  options.pool_size = 128 * MiB;
  // The accounting below counts objects only: no reservations held ahead.
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options, {.prehanded_reservations = false}));
  std::map<std::string, size_t> objects;
  uint64_t bytes = 0;
  for (int i = 0; i < 150; ++i) {
    std::string key = absl::StrFormat("kv/%d", i);
    objects[key] = PageSize(i, 4 * KiB, 1 * MiB);
    bytes += platform::RoundUp(objects[key], platform::kAllocationAlignment);
    PutOptions put_options;
    put_options.replicas = i % 10 == 0 ? 2 : 1;
    ASSERT_TRUE(client_->Put(key, PageBytes(key, objects[key]), put_options).ok());
    if (i % 10 == 0) bytes += platform::RoundUp(objects[key], platform::kAllocationAlignment);
  }
  ASSERT_TRUE(admin_->Pin("kv/1", /*prefix=*/false).ok());
  auto before = admin_->State();
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->used, bytes);
  std::string drained = cluster_->node_name(1);
  const NodeState* node = NodeNamed(*before, drained);
  ASSERT_NE(node, nullptr);
  ASSERT_GT(node->objects, 0u);
  uint64_t drained_bytes = node->used;

  std::atomic<bool> done{false};
  std::atomic<int> gets{0}, failed{0};
  std::vector<std::thread> readers;
  std::vector<std::string> keys;
  for (const auto& [key, size] : objects) keys.push_back(key);
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::unique_ptr<Client> c = Connect();
      size_t i = r;
      while (!done) {
        const std::string& key = keys[i++ % keys.size()];
        auto got = c->Get(key);
        ++gets;
        if (!got.ok() || *got != PageBytes(key, objects.at(key))) {
          ++failed;
          ADD_FAILURE() << key << " during the drain: "
                        << (got.ok() ? "WRONG BYTES" : got.status().ToString());
        }
      }
    });
  }
  absl::Time start = absl::Now();
  std::atomic<int64_t> moved_ms{-1};
  std::thread monitor([&] {
    std::unique_ptr<Client> c = Connect();
    Admin admin(*c);
    while (!done && moved_ms < 0) {
      auto s = admin.State();
      if (s.ok()) {
        for (const NodeState& n : s->nodes) {
          if (n.name == drained && n.draining && n.objects == 0) {
            moved_ms = absl::ToInt64Milliseconds(absl::Now() - start);
          }
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  absl::Status drain = admin_->Drain(drained);
  absl::Duration took = absl::Now() - start;
  done = true;
  monitor.join();
  for (auto& t : readers) t.join();
  ASSERT_TRUE(drain.ok()) << drain;
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(gets.load(), 0);

  auto after = admin_->State();
  ASSERT_TRUE(after.ok());
  node = NodeNamed(*after, drained);
  ASSERT_NE(node, nullptr);
  EXPECT_TRUE(node->draining);
  EXPECT_EQ(node->objects, 0u);
  EXPECT_EQ(node->used, 0u);
  EXPECT_EQ(after->objects, before->objects);
  EXPECT_EQ(after->used, before->used);
  EXPECT_EQ(after->pinned, 1u);
  uint64_t copies = 0;
  for (const NodeState& n : after->nodes) copies += n.objects;
  uint64_t copies_before = 0;
  for (const NodeState& n : before->nodes) copies_before += n.objects;
  EXPECT_EQ(copies, copies_before);
  for (const auto& [key, size] : objects) {
    auto info = admin_->Stat(key);
    ASSERT_TRUE(info.ok());
    std::set<uint32_t> nodes;
    for (const CopyLocation& copy : info->copies) nodes.insert(copy.node_id);
    EXPECT_EQ(nodes.size(), info->copies.size()) << key << ": two copies on one node";
    EXPECT_TRUE(RightOrNotFound(client_->Get(key), key, size, true));
  }
  std::printf(
      "[ measured ] drained %.1f MiB (%llu copies): all copies moved after %lld ms, node "
      "empty (old copies' read leases over) after %s; 3 readers made %d gets, %d failed\n",
      drained_bytes / double(MiB),
      static_cast<unsigned long long>(NodeNamed(*before, drained)->objects),
      static_cast<long long>(moved_ms.load()), absl::FormatDuration(took).c_str(), gets.load(),
      failed.load());

  // New puts avoid the drained node until it is undrained.
  const uint32_t drained_id = node->node_id;
  for (int i = 0; i < 10; ++i) {
    std::string key = absl::StrFormat("after/%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, 64 * KiB)).ok());
    EXPECT_NE(admin_->Stat(key)->copies[0].node_id, drained_id);
  }
  ASSERT_TRUE(admin_->Undrain(drained).ok());
  after = admin_->State();
  EXPECT_FALSE(NodeNamed(*after, drained)->draining);
  bool placed = false;
  for (int i = 0; i < 10 && !placed; ++i) {
    std::string key = absl::StrFormat("undrained/%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, 64 * KiB)).ok());
    placed = admin_->Stat(key)->copies[0].node_id == drained_id;
  }
  EXPECT_TRUE(placed) << "the undrained node takes objects again";
  EXPECT_TRUE(absl::IsNotFound(admin_->Drain("no-such-node")));
}

// A get of a hot page from a cached location is one read from the node: no
// directory round trip.
TEST_F(LifecycleTest, HotGetsAreServedFromTheLocationCache) {
  LocalClusterOptions options;
  options.nodes = 2;
  options.pool_size = 16 * MiB;
  ASSERT_NO_FATAL_FAILURE(StartLifecycleCluster(options));
  ASSERT_TRUE(client_->Put("hot", PageBytes("hot", 64 * KiB)).ok());
  ASSERT_TRUE(RightOrNotFound(client_->Get("hot"), "hot", 64 * KiB, true));
  ClientStats before = client_->stats();
  absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(RightOrNotFound(client_->Get("hot"), "hot", 64 * KiB, true));
  }
  absl::Duration cached = (absl::Now() - start) / 100;
  ClientStats after = client_->stats();
  // The lease is 10 s: only a very slow machine would need a new lookup.
  EXPECT_LE(after.directory_requests - before.directory_requests, 2u);
  EXPECT_GE(after.location_cache_hits - before.location_cache_hits, 98u);
  EXPECT_EQ(after.node_requests - before.node_requests, 100u);
  // The same gets with no cache: a lookup each time.
  ClientOptions uncached_options;
  uncached_options.location_cache_entries = 0;
  std::unique_ptr<Client> uncached = Connect(uncached_options);
  start = absl::Now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(RightOrNotFound(uncached->Get("hot"), "hot", 64 * KiB, true));
  }
  absl::Duration looked_up = (absl::Now() - start) / 100;
  EXPECT_EQ(uncached->stats().directory_requests, 100u + 1u);  // + Connect's status
  std::printf(
      "[ measured ] 64 KiB get over TCP loopback: %s from a cached location, %s with a "
      "directory lookup\n",
      absl::FormatDuration(cached).c_str(), absl::FormatDuration(looked_up).c_str());
  // A removed key is forgotten by the client that removed it.
  ASSERT_TRUE(client_->Remove("hot").ok());
  EXPECT_TRUE(absl::IsNotFound(client_->Get("hot").status()));
}

}  // namespace
}  // namespace unipool
