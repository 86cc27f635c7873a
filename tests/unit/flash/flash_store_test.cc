// The flash store (node/flash/flash_store.h) on real files: the segment log,
// its index rebuilt at open (flipped bytes, torn tails, damaged headers), the
// LRU reclaim when full with counts that add up, a full disk, and the
// write-behind queue that refuses rather than waits.
#include "unipool/flash/flash_store.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "unipool/common/checksum.h"
#include "unipool/flash/record.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"

namespace unipool::flash {
namespace {

using ::unipool::testing::PageBytes;
using ::unipool::testing::TestDir;

constexpr size_t kPage = 16 << 10;

std::string Key(int i) { return absl::StrCat("model/kv/", i); }

FlashOptions Small(const std::string& dir) {
  FlashOptions options;
  options.dir = dir;
  options.segment_bytes = 256 << 10;
  options.capacity = 4 * options.segment_bytes;  // 3 live segments and a spare
  options.queue_bytes = 64 << 20;
  return options;
}

std::unique_ptr<FlashStore> OpenOrDie(const FlashOptions& options) {
  auto store = FlashStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// Demotes pages [first, last) and waits until they are written.
void DemotePages(FlashStore& store, int first, int last, size_t size = kPage) {
  for (int i = first; i < last; ++i) {
    ASSERT_TRUE(store.Demote(Key(i), 1, PageBytes(Key(i), size)).ok()) << i;
  }
  store.Flush();
}

// The identity of FlashCounters: every page on flash is accounted for.
void ExpectCountsAddUp(const FlashCounters& c) {
  EXPECT_EQ(c.objects, c.recovered + c.written - c.replaced - c.lru_drops - c.drops -
                           (c.bad_pages - c.bad_at_open) - c.read_errors);
}

// A store in `dir` that demoted pages [0, pages) and was closed.
void WriteAndClose(const std::string& dir, int pages) {
  auto store = OpenOrDie(Small(dir));
  ASSERT_NE(store, nullptr);
  DemotePages(*store, 0, pages);
}

// Reads page i back at version 1 and checks its bytes.
absl::Status ReadBack(FlashStore& store, int i, size_t size = kPage) {
  std::vector<uint8_t> dest(size);
  absl::StatusOr<size_t> got = store.Read(Key(i), 1, dest);
  if (!got.ok()) return got.status();
  if (*got != size || dest != PageBytes(Key(i), size)) return absl::InternalError("wrong bytes");
  return absl::OkStatus();
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir)) files.push_back(f.path());
  std::sort(files.begin(), files.end());
  return files;
}

void FlipByte(const std::string& file, uint64_t offset) {
  int fd = ::open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << file;
  uint8_t byte = 0;
  ASSERT_EQ(::pread(fd, &byte, 1, offset), 1);
  byte ^= 0x40;
  ASSERT_EQ(::pwrite(fd, &byte, 1, offset), 1);
  ::close(fd);
}

TEST(FlashStoreTest, ADemotedPageReadsBackQueuedAndWritten) {
  TestDir dir("flash");
  auto store = OpenOrDie(Small(dir.path()));
  ASSERT_TRUE(store->Demote(Key(1), 1, PageBytes(Key(1), kPage)).ok());
  // Served from the queue or the disk, the same bytes.
  EXPECT_TRUE(ReadBack(*store, 1).ok());
  store->Flush();
  EXPECT_TRUE(ReadBack(*store, 1).ok());
  std::vector<uint8_t> dest(kPage);
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(1), 2, dest).status())) << "another version";
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(2), 1, dest).status()));
  std::vector<uint8_t> small(kPage - 1);
  EXPECT_TRUE(absl::IsOutOfRange(store->Read(Key(1), 1, small).status()));
  // The same version again is not written twice.
  ASSERT_TRUE(store->Demote(Key(1), 1, PageBytes(Key(1), kPage)).ok());
  FlashCounters c = store->counters();
  EXPECT_EQ(c.objects, 1u);
  EXPECT_EQ(c.bytes, kPage);
  EXPECT_EQ(c.demotions, 2u);
  EXPECT_EQ(c.written, 1u);
  EXPECT_EQ(c.already_on_flash, 1u);
  ExpectCountsAddUp(c);
  EXPECT_EQ(c.hits, 2u);
  EXPECT_EQ(c.misses, 2u);
  auto found = store->Find(Key(1));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->length, kPage);
  EXPECT_EQ(found->checksum, Checksum(PageBytes(Key(1), kPage)));
}

TEST(FlashStoreTest, ManyPagesAreReadAtOnceEachVerified) {
  TestDir dir("flash");
  auto store = OpenOrDie(Small(dir.path()));
  DemotePages(*store, 0, 30);  // fewer than 3 segments hold: none reclaimed
  ASSERT_EQ(store->counters().lru_drops, 0u);
  FlipByte(SegmentFiles(dir.path()).front(), 5 * 20480 + 500);             // page 5's bytes
  ASSERT_TRUE(store->Demote(Key(99), 1, PageBytes(Key(99), kPage)).ok());  // maybe queued
  std::vector<int> pages;
  for (int i = 0; i < 12; ++i) pages.push_back(i);  // in segment 1, for the flip
  pages.push_back(29);
  pages.push_back(99);
  std::vector<std::vector<uint8_t>> buffers(pages.size() + 2, std::vector<uint8_t>(kPage));
  std::vector<std::string> keys;
  for (int i : pages) keys.push_back(Key(i));
  keys.push_back("not-there");
  keys.push_back(Key(1));
  std::vector<FlashRead> reads;
  for (size_t r = 0; r < keys.size(); ++r) {
    reads.push_back({keys[r], r + 1 == keys.size() ? 2u : 1u, buffers[r]});
  }
  store->ReadMany(reads, ReadFor::kPromotion);
  for (size_t r = 0; r < pages.size(); ++r) {
    if (pages[r] == 5) {
      EXPECT_TRUE(absl::IsDataLoss(reads[r].result.status())) << reads[r].result.status();
      continue;
    }
    ASSERT_TRUE(reads[r].result.ok()) << keys[r] << ": " << reads[r].result.status();
    EXPECT_EQ(*reads[r].result, kPage);
    EXPECT_EQ(buffers[r], PageBytes(keys[r], kPage)) << keys[r];
  }
  EXPECT_TRUE(absl::IsNotFound(reads[pages.size()].result.status()));
  EXPECT_TRUE(absl::IsNotFound(reads[pages.size() + 1].result.status())) << "another version";
  FlashCounters c = store->counters();
  EXPECT_EQ(c.promotions, pages.size() - 1);
  EXPECT_EQ(c.hits, pages.size() - 1);
  EXPECT_EQ(c.misses, 2u);
  EXPECT_EQ(c.bad_pages, 1u);
  store->Flush();
  ExpectCountsAddUp(store->counters());
}

TEST(FlashStoreTest, ChangesWhileQueuedAddUp) {
  TestDir dir("flash");
  auto store = OpenOrDie(Small(dir.path()));
  // Whether or not the writer got to them in between, the same outcome.
  ASSERT_TRUE(store->Demote(Key(1), 1, PageBytes("v1", kPage)).ok());
  ASSERT_TRUE(store->Demote(Key(1), 2, PageBytes("v2", kPage)).ok());
  ASSERT_TRUE(store->Demote(Key(2), 1, PageBytes(Key(2), kPage)).ok());
  ASSERT_TRUE(store->Drop(Key(2)).ok());
  EXPECT_TRUE(absl::IsNotFound(store->Drop(Key(3))));
  store->Flush();
  FlashCounters c = store->counters();
  EXPECT_EQ(c.objects, 1u);
  EXPECT_EQ(c.queued, 0u);
  ExpectCountsAddUp(c);
  std::vector<uint8_t> dest(kPage);
  ASSERT_TRUE(store->Read(Key(1), 2, dest).ok());
  EXPECT_EQ(dest, PageBytes("v2", kPage));
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(2), 1, dest).status()));
  store.reset();
  store = OpenOrDie(Small(dir.path()));
  EXPECT_EQ(store->counters().objects, 1u);
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(1), 1, dest).status()));
}

TEST(FlashStoreTest, TheIndexIsRebuiltAtOpen) {
  TestDir dir("flash");
  {
    auto store = OpenOrDie(Small(dir.path()));
    DemotePages(*store, 0, 20);
    // A newer version replaces the old one, a drop survives the restart.
    ASSERT_TRUE(store->Demote(Key(3), 2, PageBytes("v2", kPage)).ok());
    ASSERT_TRUE(store->Drop(Key(4)).ok());
    store->Flush();
  }
  auto store = OpenOrDie(Small(dir.path()));
  FlashCounters c = store->counters();
  EXPECT_EQ(c.recovered, 19u);
  EXPECT_EQ(c.objects, 19u);
  EXPECT_EQ(c.bad_pages, 0u);
  EXPECT_EQ(c.torn_bytes, 0u);
  EXPECT_EQ(store->List().size(), 19u);
  for (int i = 0; i < 20; ++i) {
    if (i == 3 || i == 4) continue;
    EXPECT_TRUE(ReadBack(*store, i).ok()) << i;
  }
  std::vector<uint8_t> dest(kPage);
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(4), 1, dest).status())) << "dropped";
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(3), 1, dest).status())) << "replaced";
  ASSERT_TRUE(store->Read(Key(3), 2, dest).ok());
  EXPECT_EQ(dest, PageBytes("v2", kPage));
  // New pages go on after the old ones and survive another restart.
  DemotePages(*store, 100, 105);
  store.reset();
  store = OpenOrDie(Small(dir.path()));
  EXPECT_EQ(store->counters().objects, 24u);
  EXPECT_TRUE(ReadBack(*store, 104).ok());
}

TEST(FlashStoreTest, AFlippedByteOnDiskIsAMissAndCounted) {
  TestDir dir("flash");
  WriteAndClose(dir.path(), 4);
  // Page 0's bytes start right after its header and key.
  std::string segment = SegmentFiles(dir.path()).front();
  FlipByte(segment, kHeaderBytes + Key(0).size() + 100);
  // Found at open, before the page is ever listed.
  {
    auto store = OpenOrDie(Small(dir.path()));
    EXPECT_EQ(store->counters().bad_pages, 1u);
    EXPECT_EQ(store->counters().objects, 3u);
    ExpectCountsAddUp(store->counters());
    std::vector<uint8_t> dest(kPage);
    EXPECT_TRUE(absl::IsNotFound(store->Read(Key(0), 1, dest).status()));
    for (int i = 1; i < 4; ++i) EXPECT_TRUE(ReadBack(*store, i).ok()) << i;
  }
  // Without the check at open: found by the read, never returned as bytes.
  FlipByte(segment, 2 * 20480 + 500);  // in page 2's bytes (records are 20 KiB apart)
  FlashOptions lazy = Small(dir.path());
  lazy.verify_on_open = false;
  auto store = OpenOrDie(lazy);
  std::vector<uint8_t> dest(kPage);
  EXPECT_TRUE(absl::IsDataLoss(store->Read(Key(2), 1, dest).status()));
  EXPECT_TRUE(absl::IsNotFound(store->Read(Key(2), 1, dest).status())) << "dropped after";
  EXPECT_EQ(store->counters().bad_pages, 1u);
  EXPECT_EQ(store->counters().bad_at_open, 0u);
  ExpectCountsAddUp(store->counters());
  EXPECT_TRUE(ReadBack(*store, 1).ok());
  EXPECT_TRUE(ReadBack(*store, 3).ok());
}

TEST(FlashStoreTest, ATornTailIsCutAndTheLogGoesOn) {
  TestDir dir("flash");
  WriteAndClose(dir.path(), 5);
  // A crash in the middle of page 4's write: part of its bytes missing.
  std::string segment = SegmentFiles(dir.path()).back();
  uint64_t size = std::filesystem::file_size(segment);
  std::filesystem::resize_file(segment, size - 1000);
  auto store = OpenOrDie(Small(dir.path()));
  FlashCounters c = store->counters();
  EXPECT_EQ(c.objects, 4u);
  EXPECT_GT(c.torn_bytes, 0u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ReadBack(*store, i).ok()) << i;
  DemotePages(*store, 10, 12);
  store.reset();
  store = OpenOrDie(Small(dir.path()));
  EXPECT_EQ(store->counters().objects, 6u);
  EXPECT_EQ(store->counters().torn_bytes, 0u);
  EXPECT_TRUE(ReadBack(*store, 11).ok());
}

TEST(FlashStoreTest, ADamagedHeaderLosesOnlyItsPage) {
  TestDir dir("flash");
  WriteAndClose(dir.path(), 6);
  // Records are 20 KiB apart: damage page 2's header.
  FlipByte(SegmentFiles(dir.path()).front(), 2 * 20480 + 20);
  auto store = OpenOrDie(Small(dir.path()));
  FlashCounters c = store->counters();
  EXPECT_EQ(c.objects, 5u);
  EXPECT_EQ(c.bad_pages, 1u);
  for (int i : {0, 1, 3, 4, 5}) EXPECT_TRUE(ReadBack(*store, i).ok()) << i;
}

TEST(FlashStoreTest, WhenFullTheOldestPagesAreDroppedAndTheCountsAddUp) {
  TestDir dir("flash");
  FlashOptions options = Small(dir.path());
  auto store = OpenOrDie(options);
  constexpr int kPages = 200;  // about 16 segments' worth, 4 times the capacity
  DemotePages(*store, 0, kPages);
  FlashCounters c = store->counters();
  EXPECT_EQ(c.written, uint64_t{kPages});
  EXPECT_GT(c.lru_drops, 0u);
  EXPECT_EQ(c.objects + c.lru_drops, uint64_t{kPages});
  ExpectCountsAddUp(c);
  EXPECT_EQ(c.bytes, c.objects * kPage);
  EXPECT_LE(c.disk_bytes, options.capacity);
  EXPECT_LE(c.segments, options.capacity / options.segment_bytes - 1);
  EXPECT_EQ(store->List().size(), c.objects);
  // The newest pages are there, the oldest gone.
  EXPECT_TRUE(ReadBack(*store, kPages - 1).ok());
  EXPECT_TRUE(absl::IsNotFound(ReadBack(*store, 0)));
  uint64_t on_disk = 0;
  for (const std::string& f : SegmentFiles(dir.path())) on_disk += std::filesystem::file_size(f);
  EXPECT_LE(on_disk, options.capacity);
  // A restart finds exactly what was left.
  store.reset();
  store = OpenOrDie(options);
  EXPECT_EQ(store->counters().objects, c.objects);
}

TEST(FlashStoreTest, PagesReadSinceWrittenGetASecondChance) {
  TestDir dir("flash");
  auto store = OpenOrDie(Small(dir.path()));
  ASSERT_TRUE(store->Demote("hot", 1, PageBytes("hot", kPage)).ok());
  std::vector<uint8_t> dest(kPage);
  for (int i = 0; i < 200; i += 10) {
    DemotePages(*store, i, i + 10);
    ASSERT_TRUE(store->Read("hot", 1, dest).ok()) << "after " << i;
    EXPECT_EQ(dest, PageBytes("hot", kPage));
  }
  FlashCounters c = store->counters();
  EXPECT_GT(c.lru_kept, 0u);
  EXPECT_GT(c.lru_drops, 0u);
  EXPECT_EQ(c.objects + c.lru_drops, 201u);
  ExpectCountsAddUp(c);
}

TEST(FlashStoreTest, AFullQueueRefusesInsteadOfWaiting) {
  TestDir dir("flash");
  FlashOptions options = Small(dir.path());
  options.capacity = 64 << 20;
  options.queue_bytes = 4 * kPage;
  auto store = OpenOrDie(options);
  int taken = 0, refused = 0;
  for (int i = 0; i < 500; ++i) {
    absl::Status s = store->Demote(Key(i), 1, PageBytes(Key(i), kPage));
    if (s.ok()) {
      ++taken;
    } else {
      EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
      ++refused;
    }
  }
  store->Flush();
  FlashCounters c = store->counters();
  // A waiting Demote would never have been refused: the queue holds only 4.
  EXPECT_GT(refused, 0);
  EXPECT_EQ(c.refused, uint64_t(refused));
  EXPECT_EQ(c.demotions, uint64_t(taken));
  EXPECT_EQ(c.written, uint64_t(taken));
  EXPECT_EQ(c.objects, uint64_t(taken));
  // Too large for a segment: refused at once, never queued.
  std::vector<uint8_t> huge(options.segment_bytes);
  EXPECT_TRUE(absl::IsInvalidArgument(store->Demote("huge", 1, huge)));
}

// A tmpfs of 1 MiB, unmounted at the end; empty when mounting is not allowed.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& path) : path_(path) {
    std::filesystem::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=1m") == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount(path_.c_str());
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST(FlashStoreTest, AFullDiskIsAMissNeverACrash) {
  TestDir dir("flash");
  SmallDisk disk(dir.File("disk"));
  if (!disk.mounted()) GTEST_SKIP() << "mounting a tmpfs is not allowed here";
  // Half the disk taken by something else, given back later.
  std::string filler = dir.File("disk/filler");
  {
    std::vector<char> bytes(512 << 10, 'x');
    FILE* f = std::fopen(filler.c_str(), "w");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  FlashOptions options = Small(dir.File("disk/flash"));
  options.capacity = 64 << 20;  // far more than the disk has
  options.segment_bytes = 4 << 20;
  auto store = OpenOrDie(options);
  DemotePages(*store, 0, 100);  // 1.6 MiB into what is left of 1 MiB
  FlashCounters c = store->counters();
  EXPECT_GT(c.write_failures, 0u);
  EXPECT_GT(c.written, 0u);
  EXPECT_EQ(c.written + c.write_failures, 100u);
  EXPECT_EQ(c.objects, c.written);
  ExpectCountsAddUp(c);
  int served = 0;
  for (int i = 0; i < 100; ++i) {
    absl::Status read = ReadBack(*store, i);
    EXPECT_TRUE(read.ok() || absl::IsNotFound(read)) << i << ": " << read;
    served += read.ok();
  }
  EXPECT_EQ(uint64_t(served), c.objects);
  // Room again: demotions and drops are written again, and a restart finds
  // whole records only.
  std::filesystem::remove(filler);
  DemotePages(*store, 200, 210);
  ASSERT_TRUE(store->Drop(Key(0)).ok());
  store->Flush();
  EXPECT_EQ(store->counters().write_failures, c.write_failures);
  EXPECT_TRUE(ReadBack(*store, 209).ok());
  store.reset();
  store = OpenOrDie(options);
  EXPECT_EQ(store->counters().bad_pages, 0u);
  EXPECT_EQ(store->counters().torn_bytes, 0u);
  EXPECT_EQ(store->counters().objects, c.objects + 10 - 1);
}

}  // namespace
}  // namespace unipool::flash
