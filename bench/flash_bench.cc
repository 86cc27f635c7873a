// unipool-flash-bench: how fast does the flash tier read pages back for a
// promotion (one page per call, into a buffer, each verified by its XXH3),
// against a plain sequential read of the same segment files with large
// reads, on the same disk in the same run? The page cache is emptied before
// each cold measurement (the files synced, then POSIX_FADV_DONTNEED; on macOS
// the files bypass the cache with F_NOCACHE), and the warm ones follow. The
// ratio is what carries from one machine to another; results in
// bench/results/flash.md.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/flash/flash_store.h"
#include "unipool/platform/file_io.h"

ABSL_FLAG(std::string, dir, "",
          "folder on the disk to measure (default: unipool-flash-bench-PID under $TMPDIR or "
          "/var/tmp); removed at the end");
ABSL_FLAG(std::string, total, "1GiB", "bytes of pages written and read back");
ABSL_FLAG(std::string, page, "256KiB", "bytes per page (SGLang's 64-token page of one layer)");
ABSL_FLAG(int, threads, 4, "readers in the parallel promotion run");
ABSL_FLAG(int, rounds, 3, "measurements of each kind; the best is reported");

namespace unipool::flash {
namespace {

std::string Key(uint64_t i) { return absl::StrCat("bench/page/", i); }

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir)) files.push_back(f.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Syncs every segment and asks the kernel to forget its cached pages.
void EmptyCache(const std::string& dir) {
  for (const std::string& file : SegmentFiles(dir)) {
    auto fd = platform::OpenDataFile(file, false);
    if (!fd.ok()) continue;
    (void)platform::SyncData(fd->get());
    platform::DropCachedPages(fd->get());
  }
}

// Demotes `pages` pages of `page` bytes, waiting for the writer whenever its
// queue is full (the benchmark wants them all on disk).
void Fill(FlashStore& store, uint64_t pages, uint64_t page) {
  std::vector<uint8_t> bytes(page);
  for (uint64_t i = 0; i < pages; ++i) {
    for (size_t b = 0; b < bytes.size(); b += 8) bytes[b] = static_cast<uint8_t>(i + b);
    while (absl::IsResourceExhausted(store.Demote(Key(i), 1, bytes))) store.Flush();
  }
  store.Flush();
}

// Reads every segment file front to back in 4 MiB reads; returns bytes/s.
double SequentialRead(const std::string& dir) {
  std::vector<uint8_t> buffer(4 << 20);
  uint64_t bytes = 0;
  absl::Time start = absl::Now();
  for (const std::string& file : SegmentFiles(dir)) {
    auto fd = platform::OpenDataFile(file, false);
    if (!fd.ok()) continue;
    for (uint64_t offset = 0;;) {
      absl::StatusOr<size_t> got = platform::ReadAt(fd->get(), offset, buffer);
      if (!got.ok() || *got == 0) break;
      offset += *got;
      bytes += *got;
    }
  }
  return bytes / absl::ToDoubleSeconds(absl::Now() - start);
}

// Reads every page back for a promotion, `threads` readers taking every
// `threads`-th page in write order; returns page bytes/s (0 on any failure).
double PromotionRead(FlashStore& store, uint64_t pages, uint64_t page, int threads) {
  std::atomic<uint64_t> failures{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> readers;
  for (int t = 0; t < threads; ++t) {
    readers.emplace_back([&, t] {
      std::vector<uint8_t> dest(page);
      for (uint64_t i = t; i < pages; i += threads) {
        if (!store.Read(Key(i), 1, dest, ReadFor::kPromotion).ok()) ++failures;
      }
    });
  }
  for (std::thread& r : readers) r.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return failures > 0 ? 0 : pages * page / seconds;
}

// Reads every page back for a promotion in batches of `batch` (ReadMany:
// many reads in flight on one thread); returns page bytes/s (0 on a failure).
double BatchedPromotionRead(FlashStore& store, uint64_t pages, uint64_t page, int batch) {
  std::vector<std::vector<uint8_t>> buffers(batch, std::vector<uint8_t>(page));
  std::vector<std::string> keys(batch);
  uint64_t failures = 0;
  absl::Time start = absl::Now();
  for (uint64_t first = 0; first < pages; first += batch) {
    std::vector<FlashRead> reads;
    for (uint64_t i = first; i < std::min<uint64_t>(pages, first + batch); ++i) {
      keys[i - first] = Key(i);
      reads.push_back({keys[i - first], 1, buffers[i - first]});
    }
    store.ReadMany(reads, ReadFor::kPromotion);
    for (const FlashRead& r : reads) failures += !r.result.ok();
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return failures > 0 ? 0 : pages * page / seconds;
}

// The best rate of each kind of read, over `rounds` rounds that take turns
// (sequential, one reader, `threads` readers, batches), so that a change in the
// machine's load falls on every kind alike. `cold`: the cache emptied first.
struct Rates {
  double sequential = 0, one = 0, parallel = 0, batched = 0;
};
Rates Measure(FlashStore& store, const std::string& dir, uint64_t pages, uint64_t page, int threads,
              int rounds, bool cold) {
  Rates best;
  auto prepare = [&] {
    if (cold) EmptyCache(dir);
  };
  for (int r = 0; r < rounds; ++r) {
    prepare();
    best.sequential = std::max(best.sequential, SequentialRead(dir));
    prepare();
    best.one = std::max(best.one, PromotionRead(store, pages, page, 1));
    prepare();
    best.parallel = std::max(best.parallel, PromotionRead(store, pages, page, threads));
    prepare();
    best.batched = std::max(best.batched, BatchedPromotionRead(store, pages, page, 16));
  }
  return best;
}

std::string DefaultDir() {
  const char* tmp = std::getenv("TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/var/tmp", "/unipool-flash-bench-", getpid());
}

int Run() {
  std::string dir = absl::GetFlag(FLAGS_dir).empty() ? DefaultDir() : absl::GetFlag(FLAGS_dir);
  auto total = ParseSize(absl::GetFlag(FLAGS_total));
  auto page = ParseSize(absl::GetFlag(FLAGS_page));
  int threads = absl::GetFlag(FLAGS_threads);
  int rounds = absl::GetFlag(FLAGS_rounds);
  if (!total.ok() || !page.ok() || *page == 0 || *total < *page || threads < 1 || rounds < 1) {
    ExitBadUsage("unipool-flash-bench",
                 "--total and --page must be sizes with --total >= --page "
                 "> 0, --threads and --rounds at least 1");
  }
  FlashOptions options;
  options.dir = dir;
  options.segment_bytes = 64 << 20;
  options.capacity = 2 * *total + 4 * options.segment_bytes;  // nothing reclaimed
  options.verify_on_open = false;
  uint64_t pages = *total / *page;
  auto store = FlashStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "unipool-flash-bench: %s\n", store.status().ToString().c_str());
    return 1;
  }
  Fill(**store, pages, *page);
  Rates cold = Measure(**store, dir, pages, *page, threads, rounds, true);
  Rates warm = Measure(**store, dir, pages, *page, threads, rounds, false);
  absl::PrintF("flash tier: %d pages of %s (%s) in %s, I/O by %s, best of %d\n", pages,
               FormatSize(*page), FormatSize(pages * *page), dir, platform::FileIoEngine(), rounds);
  absl::PrintF("| read | cold cache GB/s | ratio to sequential | warm cache GB/s | ratio |\n");
  absl::PrintF("|---|---|---|---|---|\n");
  auto row = [&](std::string_view name, double c, double w) {
    absl::PrintF("| %s | %.2f | %.2f | %.2f | %.2f |\n", name, c / 1e9, c / cold.sequential,
                 w / 1e9, w / warm.sequential);
  };
  row("sequential, 4 MiB reads of the segment files", cold.sequential, warm.sequential);
  row("promotion reads, 1 thread, each page verified", cold.one, warm.one);
  row(absl::StrCat("promotion reads, ", threads, " threads, each page verified"), cold.parallel,
      warm.parallel);
  row("promotion reads, batches of 16 (ReadMany, 1 thread), each page verified", cold.batched,
      warm.batched);
  store->reset();
  std::filesystem::remove_all(dir);
  return cold.one > 0 && cold.parallel > 0 && cold.batched > 0 && warm.one > 0 ? 0 : 1;
}

}  // namespace
}  // namespace unipool::flash

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-flash-bench [--dir PATH] [--total 1GiB] [--page 256KiB] "
                      "[--threads 4] [--rounds 3]");
  return unipool::flash::Run();
}
