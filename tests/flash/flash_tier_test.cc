// The flash tier end to end (docs/flash.md), with a real directory and a
// real node process on loopback whose --ssd-dir is a folder of real segment
// files: eviction demotes to flash, a lookup reads the page back into memory
// (a flash hit), a full flash drops its least recently used pages for real,
// a node SIGKILLed and restarted on the same folder serves its pages again
// (a page flipped on disk is a miss, counted), and an engine-like workload
// over a pool 4x smaller than its working set, with flash and without.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "flash_fixture.h"
#include "unipool/testing/engine_workload.h"

namespace unipool {
namespace {

TEST_F(FlashTierTest, DemotedPageIsReadBackAndPromoted) {
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB));
  const size_t size = 256 * KiB;
  ASSERT_TRUE(client_->Put("a", PageBytes("a", size)).ok());
  ASSERT_TRUE(WaitFlashed(1));

  ASSERT_EQ(EvictWhenUnleased(*admin_, "a", 1), 1u);
  NodeState n = Node();
  EXPECT_EQ(n.objects, 0u) << "the memory copy is freed";
  EXPECT_EQ(n.flash.objects, 1u) << "and the object stays on flash";
  EXPECT_EQ(n.flash.demotions, 1u);
  absl::StatusOr<bool> exists = client_->Exists("a");
  ASSERT_TRUE(exists.ok() && *exists) << "a flash copy is present";

  EXPECT_TRUE(RightBytes(client_->Get("a"), "a", size));
  n = Node();
  EXPECT_EQ(n.flash.promotions, 1u);
  EXPECT_EQ(n.objects, 1u) << "promoted back into memory";
  EXPECT_EQ(n.flash.objects, 1u) << "and still on flash: the next eviction writes nothing";
  EXPECT_TRUE(testing::WaitUntil([&] { return Node().counters.flash.promotions == 1; }))
      << "the node read it from flash once";
  // Read again: from memory now, no second promotion.
  EXPECT_TRUE(RightBytes(client_->Get("a"), "a", size));
  EXPECT_EQ(Node().flash.promotions, 1u);
}

TEST_F(FlashTierTest, GetPrefixReadsAcrossBothTiers) {
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB));
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> values;
  for (int i = 0; i < 8; ++i) {
    keys.push_back(absl::StrFormat("chain/%s%d", i < 4 ? "mem" : "ssd", i));
    values.push_back(PageBytes(keys.back(), 64 * KiB + i * 16 * KiB));
  }
  for (const absl::Status& s : client_->BatchPut(keys, values)) ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(WaitFlashed(8));
  ASSERT_EQ(EvictWhenUnleased(*admin_, "chain/ssd", 4), 4u);
  NodeState n = Node();
  ASSERT_EQ(n.objects, 4u);
  ASSERT_EQ(n.flash.objects, 8u);

  std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(256 * KiB));
  absl::StatusOr<size_t> got = client_->GetPrefix(keys, buffers);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, keys.size()) << "the half on flash is part of the prefix";
  for (size_t i = 0; i < *got; ++i) {
    EXPECT_TRUE(std::equal(values[i].begin(), values[i].end(), buffers[i].begin()))
        << keys[i] << ": WRONG BYTES";
  }
  // Read back into memory after the reply (the client read them from flash).
  EXPECT_TRUE(testing::WaitUntil([&] { return Node().flash.promotions == 4; }))
      << Node().flash.promotions;
  EXPECT_TRUE(testing::WaitUntil([&] { return Node().objects == 8; })) << "all 8 in memory again";
}

// Far more than flash holds goes through a small pool: flash's own LRU
// drops pages for real, its counts add up, and every get is the right bytes
// or a clear miss (never wrong bytes); the misses are the drops the
// directory learnt of.
TEST_F(FlashTierTest, FullFlashDropsItsLeastRecentlyUsedPages) {
  // No lease: the reads below go faster than a lease ends, and each page read
  // back from flash needs the memory of one read before it.
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB, "flash", "0s"));
  const size_t size = 256 * KiB;
  const int pages = 480;  // 120 MiB: 4x the pool, 2x the flash
  std::vector<std::string> keys;
  for (int i = 0; i < pages; ++i) {
    keys.push_back(absl::StrFormat("full/%04d", i));
    absl::Status s = client_->Put(keys.back(), PageBytes(keys.back(), size));
    ASSERT_TRUE(s.ok()) << keys.back() << ": " << s;
    // Puts in bursts of 8 MiB, each written behind to flash before the next
    // (the write-behind is not meant to keep up with a loop of puts on a
    // loaded 2-core machine: an object evicted before its demotion is
    // dropped, as the engine workload below shows).
    if ((i + 1) % 32 == 0) {
      ASSERT_TRUE(testing::WaitUntil([&] { return Node().flash.objects >= keys.size(); }))
          << "demoted: " << Node().flash.objects << " of " << keys.size();
    }
  }
  // Settled: every demotion the node took is written or dropped.
  FlashStoreCounts c;
  ASSERT_TRUE(testing::WaitUntil([&] {
    NodeState n = Node();
    c = n.counters.flash;
    // The node's counters come with its heartbeats: wait for one that counts
    // every demotion the directory recorded.
    return c.demotions >= n.flash.objects && c.demotions > 0 &&
           c.objects + c.lru_drops + c.write_failures == c.demotions;
  })) << "demotions "
      << c.demotions << ", on flash " << c.objects << ", LRU drops " << c.lru_drops;
  EXPECT_GT(c.lru_drops, 0u) << "flash filled up (demotions " << c.demotions << ", write failures "
                             << c.write_failures << ", refused " << c.refused << ", on flash "
                             << c.objects << ")";
  EXPECT_LE(c.bytes, 64 * MiB);

  int hits = 0, misses = 0;
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<uint8_t>> got = client_->Get(key);
    if (got.ok()) {
      hits += RightBytes(got, key, size) ? 1 : 0;
    } else {
      EXPECT_TRUE(absl::IsNotFound(got.status())) << key << ": " << got.status();
      ++misses;
    }
  }
  NodeState n = Node();
  absl::PrintF(
      "flash full: %d pages put, %d read back, %d missed; node: %u on flash, %u LRU drops; "
      "directory: %u promotions, %u flash copies found dropped\n",
      pages, hits, misses, c.objects, c.lru_drops, n.flash.promotions, n.flash.drops);
  EXPECT_GT(n.flash.promotions, 0u);
  EXPECT_GT(n.flash.drops, 0u);
  EXPECT_GE(static_cast<uint64_t>(misses), n.flash.drops) << "every drop found is a miss";
  EXPECT_GT(hits, static_cast<int>(32 * MiB / size)) << "more hits than memory alone holds";
}

TEST_F(FlashTierTest, NodeKilledAndRestartedServesItsFlashPagesAgain) {
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB));
  const size_t size = 128 * KiB;
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    keys.push_back(absl::StrFormat("reboot/%02d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), size)).ok());
  }
  ASSERT_TRUE(WaitFlashed(keys.size()));
  // Half only on flash; the other half in memory too, lost with the process.
  ASSERT_EQ(EvictWhenUnleased(*admin_, "reboot/0", 10), 10u);

  ASSERT_TRUE(cluster_->KillNode(0).ok());
  ASSERT_TRUE(FlipPageOnDisk(ssd_.File("ssd"), "reboot/13"));
  ASSERT_TRUE(cluster_->RestartNode(0).ok());

  int hits = 0;
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<uint8_t>> got = client_->Get(key);
    if (key == "reboot/13") {
      EXPECT_TRUE(absl::IsNotFound(got.status()) || absl::IsDataLoss(got.status()))
          << "a flipped page is a miss, never wrong bytes: " << got.status();
      continue;
    }
    hits += RightBytes(got, key, size) ? 1 : 0;
  }
  EXPECT_EQ(hits, 19);
  ASSERT_TRUE(testing::WaitUntil([&] { return Node().counters.flash.recovered > 0; }));
  NodeState n = Node();
  EXPECT_EQ(n.counters.flash.recovered, 19u);
  EXPECT_EQ(n.counters.flash.bad_pages, 1u) << "the flipped page is counted";
  EXPECT_EQ(n.flash.drops, 1u) << "and the directory dropped its flash copy";
}

TEST_F(FlashTierTest, EngineWorkloadOverASmallPoolHitsFlash) {
  // Big enough that what four engines hold at once (their leased reads and
  // the pages being read back from flash) never fills it: at 32 MiB, a put
  // now and then found every evictable object leased and failed.
  const uint64_t pool = 64 * MiB;
  const uint64_t working_set = 4 * pool;
  // Four engines keep about 1.3 MiB each leased per request: a lease as long
  // as a few requests, so that what they read does not fill the small pool.
  const std::string kLease = "50ms";
  testing::WorkloadResult without;
  {
    ASSERT_NO_FATAL_FAILURE(StartFlashCluster(pool, 0, "flash-none", kLease));
    without = testing::RunEngineWorkload(*cluster_, working_set);
    admin_.reset();
    client_.reset();
    cluster_.reset();
  }
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(pool, 8 * pool, "flash-with", kLease));
  testing::WorkloadResult with = testing::RunEngineWorkload(*cluster_, working_set);
  NodeState node = Node();
  absl::PrintF(
      "engine workload, pool %u MiB, working set %u MiB: hit rate %.3f without flash, %.3f with "
      "%u MiB of flash (blocks %u/%u and %u/%u; %u demoted, %u read back from flash)\n",
      pool / MiB, working_set / MiB, without.hit_rate(), with.hit_rate(), 8 * pool / MiB,
      without.blocks_hit, without.blocks_asked, with.blocks_hit, with.blocks_asked,
      node.flash.demotions, node.flash.promotions);
  EXPECT_EQ(without.failed, 0u);
  EXPECT_EQ(without.wrong, 0u);
  EXPECT_EQ(with.failed, 0u);
  EXPECT_EQ(with.wrong, 0u);
  // How much flash adds depends on how far the write-behind keeps up with
  // the puts on this machine (an object evicted before it is on flash is
  // dropped): printed above, not asserted. That flash served hits is.
  EXPECT_GT(node.flash.promotions, 0u) << "lookups read pages back from flash";
  EXPECT_GT(node.flash.demotions, 0u) << "evictions kept pages on flash";
}

}  // namespace
}  // namespace unipool
