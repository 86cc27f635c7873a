// Question 1, the sweep: how fast does unipool move pages, per transport,
// next to Redis and memcpy, across page sizes, pages per call and client
// threads? For every cell, each system:
//   put  BatchPut of fresh keys (Redis: pipelined SETs), every call timed;
//   get  BatchGet into the caller's buffers (Redis: pipelined GETs read
//        straight into them) of pages this client has read once before, so
//        locations are cached as for a hot prefix; the first, untimed round
//        checks every byte; the faster of two timed rounds is reported;
//   copy (memcpy) the same pages from memory into the same buffers;
//   hash (checksum) the same pages' checksums, one pass over the bytes.
// One client (unipool: one Client shared by the threads, one connection
// each; Redis: one connection per thread). Output: one `unipool op=...`,
// `redis op=...` or `memcpy op=copy` line per measurement (measure.h).
#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "measure.h"
#include "peers.h"
#include "questions.h"
#include "unipool/common/checksum.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"

ABSL_FLAG(std::string, sizes, "64KiB,2MiB", "page sizes, comma-separated");
ABSL_FLAG(int, batch, 16, "pages per BatchPut / BatchGet call");
ABSL_FLAG(std::string, batches, "", "several batch sizes, comma-separated (overrides --batch)");
ABSL_FLAG(std::string, threads, "1", "client thread counts, comma-separated");
ABSL_FLAG(std::string, total, "64MiB", "bytes moved per measurement (all threads)");
ABSL_FLAG(int, min_calls, 3, "calls per thread per measurement, at least");
ABSL_FLAG(int, max_calls, 2000, "calls per thread per measurement, at most");
ABSL_FLAG(std::string, max_call_bytes, "256MiB",
          "skip batch x size above this (the pool, Redis and the buffers hold a few of them)");

namespace unipool::bench {
namespace {

struct Cell {
  uint64_t size;
  int batch;
  int threads;
  int calls;  // per thread
};

int CallsFor(uint64_t total, uint64_t size, int batch, int threads) {
  uint64_t per_call = size * batch * threads;
  int calls = static_cast<int>((total + per_call - 1) / per_call);
  return std::clamp(calls, absl::GetFlag(FLAGS_min_calls), absl::GetFlag(FLAGS_max_calls));
}

// The cell's reads: every byte checked (`check_all`), or the ends of each
// page (timed rounds).
absl::Status ReadCell(System& system, const Cell& cell, std::vector<ThreadPages>& pages,
                      const std::vector<std::vector<std::string>>& keys, int t, int call,
                      bool check_all) {
  const int batch = cell.batch;
  std::vector<std::string_view> k(keys[t].begin() + call * batch,
                                  keys[t].begin() + (call + 1) * batch);
  std::vector<std::span<uint8_t>> into;
  for (int j = 0; j < batch; ++j) into.emplace_back(pages[t].out[j].data(), cell.size);
  RETURN_IF_ERROR(system.Get(t, k, into));
  for (int j = 0; j < batch; ++j) {
    auto want = pages[t].page(call * batch + j);
    bool right = check_all ? std::memcmp(into[j].data(), want.data(), want.size()) == 0
                           : LooksRight(into[j], want);
    if (!right) {
      return absl::DataLossError(absl::StrFormat("%s: wrong bytes for %s", system.name(), k[j]));
    }
  }
  return absl::OkStatus();
}

// Puts, reads back (checking every byte, untimed), reads again (timed), and
// removes the cell's pages on `system`.
void MeasureSystem(System& system, const Cell& cell, std::vector<ThreadPages>& pages,
                   uint64_t run) {
  const int batch = cell.batch;
  std::vector<std::vector<std::string>> keys(cell.threads);
  for (int t = 0; t < cell.threads; ++t) {
    for (int i = 0; i < cell.calls * batch; ++i) {
      keys[t].push_back(absl::StrFormat("bench/%u/%u/%d/%d", run, cell.size, t, i));
    }
  }
  Result put = RunThreads(cell.threads, cell.calls, batch, cell.size, [&](int t, int call) {
    std::vector<std::string_view> k(keys[t].begin() + call * batch,
                                    keys[t].begin() + (call + 1) * batch);
    std::vector<std::span<const uint8_t>> values;
    for (int j = 0; j < batch; ++j) values.push_back(pages[t].page(call * batch + j));
    return system.Put(t, k, values);
  });
  // Every byte, once, untimed (this also caches the locations).
  RunThreads(cell.threads, cell.calls, batch, cell.size, [&](int t, int call) {
    return ReadCell(system, cell, pages, keys, t, call, /*check_all=*/true);
  });
  uint64_t directory_before = system.directory_requests();
  auto timed_get = [&](int t, int call) {
    return ReadCell(system, cell, pages, keys, t, call, /*check_all=*/false);
  };
  Result get = Best(RunThreads(cell.threads, cell.calls, batch, cell.size, timed_get),
                    RunThreads(cell.threads, cell.calls, batch, cell.size, timed_get));
  get.directory_requests = system.directory_requests() - directory_before;
  std::string transport = system.transport();
  Print(system.name(), "put", cell.size, batch, transport, cell.threads, put);
  Print(system.name(), "get", cell.size, batch, transport, cell.threads, get);
  if (system.caches_locations() && get.directory_requests > 0) {
    // Cached locations are trusted for the directory's lease (--lease): a
    // timed round that ends after it looks its keys up again, and the get
    // figure is then not that of cached gets.
    absl::PrintF(
        "note: %s get size=%u transport=%s made %u directory requests: the timed rounds "
        "outlasted the lease (--lease=%s); its figure includes lookups\n",
        system.name(), cell.size, transport, get.directory_requests,
        absl::FormatDuration(absl::GetFlag(FLAGS_lease)));
  }
  for (int t = 0; t < cell.threads; ++t) {
    std::vector<std::string_view> all(keys[t].begin(), keys[t].end());
    OkOrDie(system.Remove(t, all), system.name() + " remove");
  }
}

// What the checksum (XXH3-64) of every page of the cell costs on this
// core: one pass over the bytes, which UC RDMA adds to every get (the
// client checks what arrived) and every put (the node checks what arrived).
void MeasureChecksum(const Cell& cell, std::vector<ThreadPages>& pages) {
  std::atomic<uint64_t> sink{0};  // threads hash side by side
  auto hash = [&](int t, int call) {
    for (int j = 0; j < cell.batch; ++j) {
      sink.fetch_xor(Checksum(pages[t].page(call * cell.batch + j)), std::memory_order_relaxed);
    }
    return absl::OkStatus();
  };
  RunThreads(cell.threads, cell.calls, cell.batch, cell.size, hash);
  Result r = Best(RunThreads(cell.threads, cell.calls, cell.batch, cell.size, hash),
                  RunThreads(cell.threads, cell.calls, cell.batch, cell.size, hash));
  if (sink.load() == 42) absl::PrintF("\n");  // keeps the hashing from being optimised away
  Print("checksum", "hash", cell.size, cell.batch, "memory", cell.threads, r);
}

// The ceiling of a same-host get: the same pages copied into the same
// buffers with memcpy (a warm-up round first, as for the others).
void MeasureMemcpy(const Cell& cell, std::vector<ThreadPages>& pages) {
  auto copy = [&](int t, int call) {
    for (int j = 0; j < cell.batch; ++j) {
      auto from = pages[t].page(call * cell.batch + j);
      std::memcpy(pages[t].out[j].data(), from.data(), from.size());
    }
    return absl::OkStatus();
  };
  RunThreads(cell.threads, cell.calls, cell.batch, cell.size, copy);
  Result r = Best(RunThreads(cell.threads, cell.calls, cell.batch, cell.size, copy),
                  RunThreads(cell.threads, cell.calls, cell.batch, cell.size, copy));
  Print("memcpy", "copy", cell.size, cell.batch, "memory", cell.threads, r);
}

// Every size x batch x threads cell the flags ask for, but those whose one
// call would move more than --max-call-bytes (said in a `skip` line).
std::vector<Cell> Cells() {
  std::vector<uint64_t> sizes = SizeList(absl::GetFlag(FLAGS_sizes), "sizes");
  std::vector<int> batches = absl::GetFlag(FLAGS_batches).empty()
                                 ? std::vector<int>{absl::GetFlag(FLAGS_batch)}
                                 : IntList(absl::GetFlag(FLAGS_batches), "batches");
  std::vector<int> thread_counts = IntList(absl::GetFlag(FLAGS_threads), "threads");
  uint64_t total = OrDie(ParseSize(absl::GetFlag(FLAGS_total)), "--total");
  uint64_t max_call = OrDie(ParseSize(absl::GetFlag(FLAGS_max_call_bytes)), "--max-call-bytes");
  std::vector<Cell> cells;
  for (uint64_t size : sizes) {
    for (int batch : batches) {
      for (int threads : thread_counts) {
        if (size * batch > max_call) {
          absl::PrintF("skip size=%u batch=%d threads=%d reason=batch_x_size_over_%u\n", size,
                       batch, threads, max_call);
          continue;
        }
        cells.push_back({size, batch, threads, CallsFor(total, size, batch, threads)});
      }
    }
  }
  return cells;
}

// The pages of every cell of page size `size`, made once.
std::vector<ThreadPages> PagesFor(uint64_t size, const std::vector<Cell>& cells) {
  int most_threads = 0, most_batch = 0;
  uint64_t most_pages = 0;
  for (const Cell& c : cells) {
    if (c.size != size) continue;
    most_threads = std::max(most_threads, c.threads);
    most_batch = std::max(most_batch, c.batch);
    most_pages = std::max<uint64_t>(most_pages, static_cast<uint64_t>(c.calls) * c.batch);
  }
  std::vector<ThreadPages> pages;
  for (int t = 0; t < most_threads; ++t)
    pages.push_back(MakePages(t, size, most_pages, most_batch));
  return pages;
}

}  // namespace

int RunSweep() {
  std::vector<Cell> cells = Cells();
  uint64_t biggest = 0;
  int most_threads = 1;
  for (const Cell& c : cells) {
    biggest = std::max<uint64_t>(biggest, c.size * c.batch * c.calls * c.threads);
    most_threads = std::max(most_threads, c.threads);
  }
  Peers peers(biggest);
  std::vector<std::unique_ptr<System>> systems;
  for (const std::string& t : peers.transports()) systems.push_back(peers.Unipool(t));
  if (peers.has_redis()) systems.push_back(peers.Redis(most_threads));
  bool with_memcpy = WithPeer("memcpy");
  bool with_checksum = WithPeer("checksum");
  uint64_t run = 0;
  for (uint64_t size : SizeList(absl::GetFlag(FLAGS_sizes), "sizes")) {
    std::vector<ThreadPages> pages = PagesFor(size, cells);
    for (const Cell& cell : cells) {
      if (cell.size != size) continue;
      if (with_memcpy) MeasureMemcpy(cell, pages);
      if (with_checksum) MeasureChecksum(cell, pages);
      for (auto& system : systems) MeasureSystem(*system, cell, pages, ++run);
    }
  }
  return 0;
}

}  // namespace unipool::bench
