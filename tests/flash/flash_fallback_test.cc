// The flash tier when things go wrong (docs/flash.md), end to end with real
// processes and real segment files:
//   - no memory can be reserved to read a page back (everything pinned): the
//     node serves the get straight from flash, verified;
//   - the directory's catalog is lost (a fresh --db): the restarted node
//     announces its flash pages, each verified first (a damaged one is
//     dropped and counted), and they are found again with the same bytes;
//   - the flash disk is full (ENOSPC on a small tmpfs): the node logs and
//     counts the failed writes and keeps serving every page from memory.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "flash_fixture.h"

namespace unipool {
namespace {

// Pins `prefix` and puts 1 MiB objects under it until the pool is full,
// then 64 KiB ones into what is left once the memory held for ended leases
// is free: nothing in memory can then be evicted, and no page of 256 KiB
// fits. Returns how many.
int FillWithPinned(Client& client, Admin& admin, const std::string& prefix) {
  EXPECT_TRUE(admin.Pin(prefix, /*prefix=*/true).ok());
  int n = 0;
  for (size_t size : {1 * MiB, 64 * KiB}) {
    // Room the evicted objects' leases held comes back: fill it too.
    EXPECT_TRUE(testing::WaitUntil([&] {
      absl::StatusOr<PoolState> state = admin.State();
      return state.ok() && state->held == 0;
    }));
    for (;; ++n) {
      std::string key = absl::StrFormat("%s%03d", prefix, n);
      absl::Status s = client.Put(key, PageBytes(key, size));
      if (absl::IsResourceExhausted(s)) break;
      EXPECT_TRUE(s.ok()) << key << ": " << s;
      if (!s.ok() || n > 2000) return n;
    }
  }
  return n;
}

class ServedFromFlashTest : public FlashTierTest,
                            public ::testing::WithParamInterface<testing::TestAuth> {};

TEST_P(ServedFromFlashTest, GetIsServedFromFlashWhenNoMemoryCanBeReserved) {
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB, "flash", "1s", GetParam()));
  std::vector<std::string> keys = {"cold/a", "cold/b", "cold/c"};
  const size_t size = 256 * KiB;
  for (const std::string& key : keys) ASSERT_TRUE(client_->Put(key, PageBytes(key, size)).ok());
  ASSERT_TRUE(WaitFlashed(keys.size()));
  ASSERT_EQ(EvictWhenUnleased(*admin_, "cold/", keys.size()), keys.size());
  // A filler that gives up on a full pool at once (by default a put waits
  // up to 30 s for room the leases may free).
  ClientOptions options;
  options.name = "filler";
  options.pool_full_wait = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<Client>> filler = testing::ConnectTo(*cluster_, options);
  ASSERT_TRUE(filler.ok()) << filler.status();
  int pinned = FillWithPinned(**filler, *admin_, "hot/");
  ASSERT_GT(pinned, 20) << "the pool holds about 31 pinned MiB";

  // One by one, as a batch and as a prefix: every read is served from flash.
  EXPECT_TRUE(RightBytes(client_->Get("cold/a"), "cold/a", size));
  auto batch = client_->BatchGet(keys);
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_TRUE(RightBytes(batch[i], keys[i], size));
  std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(size));
  absl::StatusOr<size_t> got = client_->GetPrefix(keys, buffers);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, keys.size());
  for (size_t i = 0; i < *got; ++i) EXPECT_EQ(buffers[i], PageBytes(keys[i], size)) << keys[i];

  NodeState n = Node();
  EXPECT_EQ(n.flash.promotions, 0u) << "there was no room to read them back into";
  EXPECT_EQ(n.objects, static_cast<uint64_t>(pinned)) << "memory still holds just the pinned";
  EXPECT_TRUE(testing::WaitUntil([&] { return Node().counters.flash.hits >= 7; }))
      << "the node served 7 reads from flash, counted " << Node().counters.flash.hits;

  // Once there is room, a lookup reads the page back into memory again.
  ASSERT_TRUE(admin_->Unpin("hot/", /*prefix=*/true).ok());
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto a = client_->Get("cold/a");
    return a.ok() && Node().flash.promotions >= 1;
  }));
}

// Without a key, and with one: then each flash read carries the directory's
// FlashRead capability, which the node checks.
INSTANTIATE_TEST_SUITE_P(Auth, ServedFromFlashTest,
                         ::testing::Values(testing::TestAuth::kNone,
                                           testing::TestAuth::kClusterKey));

TEST_F(FlashTierTest, NodeAnnouncesItsPagesToADirectoryThatLostItsCatalog) {
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB, "announce-before"));
  const size_t size = 128 * KiB;
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    keys.push_back(absl::StrFormat("prefix/%02d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), size)).ok());
  }
  ASSERT_TRUE(WaitFlashed(keys.size()));
  ASSERT_EQ(EvictWhenUnleased(*admin_, "prefix/0", 10), 10u) << "half on flash only";

  // The whole pool goes down; one page is damaged on disk meanwhile.
  ASSERT_TRUE(cluster_->KillNode(0).ok());
  ASSERT_TRUE(cluster_->KillDirectory().ok());
  admin_.reset();
  client_.reset();
  cluster_.reset();
  ASSERT_TRUE(FlipPageOnDisk(ssd_dir_, "prefix/13"));

  // A directory on a fresh --db, and the node on the same --ssd-dir.
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB, "announce-after"));
  ASSERT_TRUE(testing::WaitUntil([&] { return Node().flash.objects >= 19; }))
      << "announced: " << Node().flash.objects;
  NodeState n = Node();
  EXPECT_EQ(n.flash.objects, 19u) << "the damaged page is not announced";

  std::vector<std::vector<uint8_t>> buffers(keys.size(), std::vector<uint8_t>(size));
  absl::StatusOr<size_t> got = client_->GetPrefix(keys, buffers);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, 13u) << "the prefix stops at the damaged page";
  for (size_t i = 0; i < *got; ++i) EXPECT_EQ(buffers[i], PageBytes(keys[i], size)) << keys[i];
  int hits = 0;
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<uint8_t>> page = client_->Get(key);
    if (key == "prefix/13") {
      EXPECT_TRUE(absl::IsNotFound(page.status())) << page.status();
      continue;
    }
    hits += RightBytes(page, key, size) ? 1 : 0;
  }
  EXPECT_EQ(hits, 19);
  ASSERT_TRUE(testing::WaitUntil([&] { return Node().counters.flash.bad_pages > 0; }));
  EXPECT_EQ(Node().counters.flash.bad_pages, 1u) << "the damaged page is counted";
  // New puts get versions of their own: the old pages are still read right.
  ASSERT_TRUE(client_->Put("after", PageBytes("after", size)).ok());
  EXPECT_TRUE(RightBytes(client_->Get("after"), "after", size));
  EXPECT_TRUE(RightBytes(client_->Get("prefix/00"), "prefix/00", size));
}

// Bytes the file system at `dir` has free.
uint64_t FreeBytes(const std::string& dir) {
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return 0;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

bool FileContains(const std::string& path, std::string_view text) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes.find(text) != std::string::npos;
}

TEST_F(FlashTierTest, FullFlashDiskFailsDemotionsAndMemoryKeepsServing) {
  // A 64 MiB tmpfs as the flash disk, nearly filled by another file.
  ssd_dir_ = ssd_.File("tiny");
  ASSERT_EQ(mkdir(ssd_dir_.c_str(), 0700), 0);
  if (mount("tmpfs", ssd_dir_.c_str(), "tmpfs", 0, "size=64m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << strerror(errno);
  }
  absl::Cleanup unmount = [&] { umount2(ssd_dir_.c_str(), MNT_DETACH); };
  ASSERT_NO_FATAL_FAILURE(StartFlashCluster(32 * MiB, 64 * MiB, "enospc"));
  const std::string filler = ssd_dir_ + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    std::string block(1 * MiB, 'x');
    for (uint64_t left = FreeBytes(ssd_dir_); left > 2 * MiB; left -= MiB) out << block;
  }
  ASSERT_LT(FreeBytes(ssd_dir_), 3 * MiB);

  const size_t size = 256 * KiB;
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) {  // 10 MiB: memory holds them all
    keys.push_back(absl::StrFormat("full-disk/%02d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), size)).ok());
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return Node().counters.flash.write_failures > 0; }))
      << "demotions hit ENOSPC";
  NodeState n = Node();
  EXPECT_EQ(n.objects, keys.size()) << "memory dropped nothing";
  for (const std::string& key : keys) EXPECT_TRUE(RightBytes(client_->Get(key), key, size));
  EXPECT_TRUE(FileContains(cluster_->work_dir() + "/node0.log", "No space left on device"))
      << "the node logs the failed write";

  // Room again: the next demotions are written.
  ASSERT_EQ(unlink(filler.c_str()), 0);
  uint64_t before = Node().counters.flash.objects;
  for (int i = 0; i < 4; ++i) {
    std::string key = absl::StrFormat("room-again/%d", i);
    ASSERT_TRUE(client_->Put(key, PageBytes(key, size)).ok());
  }
  EXPECT_TRUE(testing::WaitUntil([&] { return Node().counters.flash.objects >= before + 4; }));
}

}  // namespace
}  // namespace unipool
