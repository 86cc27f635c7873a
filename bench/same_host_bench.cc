// unipool-samehost-bench answers: on one machine, how close does each
// engine call over shared memory come to a memcpy of the same bytes,
// measured in the same run (issue 23's targets)? For each page size, in
// batches of --batch pages (fewer when a call would pass --max_call_bytes):
//   memcpy       the pages from memory into the same reused buffers;
//   memcpy-2     the same, half the pages on a second thread: the limit a
//                copy over two cores (get-2) approaches;
//   put-fresh    BatchPut by a new client (its first writes into each slab
//                page), with ClientOptions::prefault_reservations off, then
//                on (put-fresh-ahead);
//   put-steady   BatchPut into slab space the same client wrote before (its
//                earlier keys removed and their memory given back);
//   get-1, get-2 BatchGet into reused buffers, locations cached, with 1 and
//                2 copy threads (ClientOptions::copy_threads);
//   prefix       GetPrefix of each batch into the reused buffers;
//   views        GetPrefixViews of each batch (mapped, checksums verified),
//                then released: the engine's bytes with no copy;
//   and the KV-cache prefix hit per page layout (--kvcache, KvRound below).
// Each round measures memcpy first and every call after it; a call's ratio
// is against the memcpy of its own round. --rounds rounds; the table gives
// each ratio's median and its spread (min-max), and the machine's load
// average before and after (a loaded machine moves single rounds by 2x).
//
//   unipool-samehost-bench [--sizes 64KiB,256KiB,2MiB] [--batch 128] [--rounds 3]
//
// Starts its own cluster: one node with a --pool_size slab on loopback.
// Prints one `samehost op=... size=... round=... GBps=... memcpy_GBps=...`
// line per measurement, then a markdown table (bench/run.sh --same-host
// copies it into bench/results/same-host.md).
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/tools/local_cluster.h"

ABSL_FLAG(std::string, sizes, "64KiB,256KiB,2MiB", "page sizes, comma-separated");
ABSL_FLAG(int, batch, 128, "pages per call");
ABSL_FLAG(std::string, total, "64MiB", "bytes per measurement (at least 2 calls)");
ABSL_FLAG(std::string, max_call_bytes, "64MiB", "fewer pages per call above this");
ABSL_FLAG(int, rounds, 3, "rounds of every measurement");
ABSL_FLAG(std::string, pool_size, "1GiB", "the node's slab");
ABSL_FLAG(bool, kvcache, true, "also the KV-cache prefix hit per page layout (256 MiB each)");

namespace {

constexpr char kProgram[] = "unipool-samehost-bench";
using Clock = std::chrono::steady_clock;

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << kProgram << ": " << what << "\n";
  std::exit(1);
}
void OkOrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}
template <typename T>
T OrDie(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(what + ": " + value.status().ToString());
  return std::move(*value);
}
uint64_t SizeFlag(const std::string& text, const char* flag) {
  return OrDie(unipool::ParseSize(text), absl::StrFormat("--%s=%s", flag, text));
}

std::string LoadAverage() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return "unknown";
  return absl::StrFormat("%.2f %.2f %.2f", load[0], load[1], load[2]);
}

// One page size's measurement: `calls` calls of `batch` pages.
struct Cell {
  uint64_t size = 0;
  int batch = 0;
  int calls = 0;
  std::vector<uint8_t> source;                // page i at i * size
  std::vector<std::vector<uint8_t>> buffers;  // one call's, reused
  std::vector<std::span<uint8_t>> into;

  uint64_t call_bytes() const { return size * batch; }
  std::span<const uint8_t> page(int call, int j) const {
    return {source.data() + (static_cast<uint64_t>(call) * batch + j) * size, size};
  }
};

Cell MakeCell(uint64_t size) {
  Cell cell;
  cell.size = size;
  uint64_t max_call = SizeFlag(absl::GetFlag(FLAGS_max_call_bytes), "max_call_bytes");
  cell.batch = static_cast<int>(
      std::clamp<uint64_t>(max_call / size, 1, static_cast<uint64_t>(absl::GetFlag(FLAGS_batch))));
  uint64_t total = SizeFlag(absl::GetFlag(FLAGS_total), "total");
  cell.calls = static_cast<int>(std::max<uint64_t>(2, total / cell.call_bytes()));
  cell.source.resize(cell.call_bytes() * cell.calls);
  std::mt19937_64 random(size);
  for (size_t i = 0; i + 8 <= cell.source.size(); i += 8) {
    uint64_t word = random();
    std::memcpy(cell.source.data() + i, &word, 8);
  }
  cell.buffers.assign(cell.batch, std::vector<uint8_t>(size, 0));
  for (auto& b : cell.buffers) cell.into.emplace_back(b);
  return cell;
}

std::vector<std::string> Keys(const std::string& prefix, const Cell& cell, int call) {
  std::vector<std::string> keys;
  for (int j = 0; j < cell.batch; ++j) keys.push_back(absl::StrFormat("%s/%d/%d", prefix, call, j));
  return keys;
}
std::vector<std::string_view> Views(const std::vector<std::string>& keys) {
  return {keys.begin(), keys.end()};
}

// GB/s of `calls` calls of `bytes` each, timing only the calls.
template <typename Call>
double Time(const Cell& cell, Call call) {
  double seconds = 0;
  for (int c = 0; c < cell.calls; ++c) {
    auto start = Clock::now();
    call(c);
    seconds += std::chrono::duration<double>(Clock::now() - start).count();
  }
  return cell.call_bytes() * cell.calls / seconds / 1e9;
}

std::unique_ptr<unipool::Client> Connect(const unipool::LocalCluster& cluster, int copy_threads,
                                         bool prefault) {
  unipool::ClientOptions options;
  options.directory = cluster.directory_address();
  options.name = "samehost-bench";
  options.rdma = unipool::RdmaPolicy::kOff;
  options.copy_threads = copy_threads;
  options.prefault_reservations = prefault;
  return OrDie(unipool::Client::Connect(options), "connect");
}

void PutAll(unipool::Client& client, const Cell& cell, const std::string& prefix, int call) {
  std::vector<std::string> keys = Keys(prefix, cell, call);
  std::vector<std::span<const uint8_t>> values;
  for (int j = 0; j < cell.batch; ++j) values.push_back(cell.page(call, j));
  for (const absl::Status& s : client.BatchPut(Views(keys), values)) OkOrDie(s, "put " + prefix);
}

void RemoveAll(unipool::Client& client, const Cell& cell, const std::string& prefix) {
  for (int c = 0; c < cell.calls; ++c) {
    std::vector<std::string> keys = Keys(prefix, cell, c);
    for (const absl::Status& s : client.BatchRemove(Views(keys))) OkOrDie(s, "remove");
  }
}

// Waits until removed objects' memory is free again (their leases ended),
// so the next puts may land in it.
void WaitForHeldSpace(unipool::Admin& admin) {
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (OrDie(admin.State(), "pool state").held > 0) {
    if (Clock::now() > deadline) Fail("removed objects' memory was not given back in 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Every byte of every page `prefix` holds, read back by `client`.
void Check(unipool::Client& client, Cell& cell, const std::string& prefix) {
  for (int c = 0; c < cell.calls; ++c) {
    std::vector<std::string> keys = Keys(prefix, cell, c);
    auto results = client.BatchGet(Views(keys), cell.into);
    for (int j = 0; j < cell.batch; ++j) {
      OkOrDie(results[j].status(), "get " + keys[j]);
      auto want = cell.page(c, j);
      if (std::memcmp(cell.buffers[j].data(), want.data(), want.size()) != 0) {
        Fail("wrong bytes for " + keys[j]);
      }
    }
  }
}

struct Row {
  std::vector<double> gbps, ratio;
};
using Rows = std::map<std::pair<std::string, uint64_t>, Row>;

void Record(Rows& rows, const std::string& op, const Cell& cell, int round, double gbps,
            double memcpy_gbps) {
  std::printf("samehost op=%s size=%lu batch=%d round=%d GBps=%.3f memcpy_GBps=%.3f\n", op.c_str(),
              static_cast<unsigned long>(cell.size), cell.batch, round, gbps, memcpy_gbps);
  std::fflush(stdout);
  Row& row = rows[{op, cell.size}];
  row.gbps.push_back(gbps);
  row.ratio.push_back(gbps / memcpy_gbps);
}

void Round(const unipool::LocalCluster& cluster, unipool::Admin& admin, Cell& cell, int round,
           Rows& rows) {
  const std::string tag = absl::StrFormat("sh/%d/%d", cell.size, round);
  auto copy_pages = [&](int c, int from, int to) {
    for (int j = from; j < to; ++j) {
      std::memcpy(cell.buffers[j].data(), cell.page(c, j).data(), cell.size);
    }
  };
  double copy = Time(cell, [&](int c) { copy_pages(c, 0, cell.batch); });
  Record(rows, "memcpy", cell, round, copy, copy);
  // Half the pages on a second thread: the limit a copy split over two
  // cores approaches (memory bandwidth, or the cores themselves).
  Record(rows, "memcpy-2", cell, round,
         Time(cell,
              [&](int c) {
                std::thread half([&] { copy_pages(c, 0, cell.batch / 2); });
                copy_pages(c, cell.batch / 2, cell.batch);
                half.join();
              }),
         copy);
  {
    auto fresh = Connect(cluster, 1, /*prefault=*/false);
    Record(rows, "put-fresh", cell, round,
           Time(cell, [&](int c) { PutAll(*fresh, cell, tag + "/f0", c); }), copy);
    RemoveAll(*fresh, cell, tag + "/f0");
  }
  auto writer = Connect(cluster, 1, /*prefault=*/true);
  Record(rows, "put-fresh-ahead", cell, round,
         Time(cell, [&](int c) { PutAll(*writer, cell, tag + "/f1", c); }), copy);
  auto one = Connect(cluster, 1, true);
  auto two = Connect(cluster, 2, true);
  Check(*one, cell, tag + "/f1");  // caches the locations, maps the pages
  Check(*two, cell, tag + "/f1");
  auto get = [&](unipool::Client& client) {
    return Time(cell, [&](int c) {
      std::vector<std::string> keys = Keys(tag + "/f1", cell, c);
      for (const auto& r : client.BatchGet(Views(keys), cell.into)) OkOrDie(r.status(), "get");
    });
  };
  Record(rows, "get-1", cell, round, get(*one), copy);
  Record(rows, "get-2", cell, round, get(*two), copy);
  Record(rows, "prefix", cell, round,
         Time(cell,
              [&](int c) {
                std::vector<std::string> keys = Keys(tag + "/f1", cell, c);
                auto n = OrDie(one->GetPrefix(Views(keys), cell.into), "prefix");
                if (n != keys.size()) Fail("prefix read fewer pages than stored");
              }),
         copy);
  Record(rows, "views", cell, round,
         Time(cell,
              [&](int c) {
                std::vector<std::string> keys = Keys(tag + "/f1", cell, c);
                auto views = OrDie(one->GetPrefixViews(Views(keys)), "views");
                if (views.size() != keys.size()) Fail("fewer views than pages stored");
              }),
         copy);
  // The writer's earlier space, given back, is where its next puts go.
  RemoveAll(*writer, cell, tag + "/f1");
  WaitForHeldSpace(admin);
  Record(rows, "put-steady", cell, round,
         Time(cell, [&](int c) { PutAll(*writer, cell, tag + "/s", c); }), copy);
  Check(*one, cell, tag + "/s");
  RemoveAll(*writer, cell, tag + "/s");
  WaitForHeldSpace(admin);
}

// The KV-cache prefix hit per page layout (those of unipool-bench --kvcache,
// Llama-3-8B: 32 layers, 4 KiB per token per layer, a 2,048-token prefix):
// engine A stores the prefix; engine B, a new client, reads it with one
// GetPrefix into its paged KV memory (prefix-hit-new: its first reads of
// those slab pages), then again (prefix-hit), then takes views of it
// (views-hit-new: each page mapped for the first time in this process) and
// again (views-hit: the released views' mappings reused); memcpy of the same
// bytes into the same memory is the base.
struct Layout {
  const char* name;
  int tokens;       // per page
  bool all_layers;  // a page holds every layer (else one layer)
};
constexpr Layout kLayouts[] = {{"vllm-layer", 16, false},
                               {"sglang-layer", 64, false},
                               {"vllm-block", 16, true},
                               {"lmcache-chunk", 256, true}};
constexpr int kLayers = 32;
constexpr uint64_t kBytesPerTokenPerLayer = 4096;
constexpr int kPrefixTokens = 2048;

void KvRound(const unipool::LocalCluster& cluster, unipool::Admin& admin, int round,
             std::map<std::pair<std::string, std::string>, Row>& rows) {
  for (const Layout& l : kLayouts) {
    Cell cell;
    cell.size = kBytesPerTokenPerLayer * l.tokens * (l.all_layers ? kLayers : 1);
    cell.batch = (kPrefixTokens / l.tokens) * (l.all_layers ? 1 : kLayers);  // the prefix
    cell.calls = 1;
    cell.source.resize(cell.call_bytes());
    std::mt19937_64 random(cell.size + round);
    for (size_t i = 0; i + 8 <= cell.source.size(); i += 8) {
      uint64_t word = random();
      std::memcpy(cell.source.data() + i, &word, 8);
    }
    std::vector<uint8_t> kv(cell.call_bytes()), copied(cell.call_bytes(), 1);
    for (int j = 0; j < cell.batch; ++j)
      cell.into.emplace_back(kv.data() + j * cell.size, cell.size);
    const std::string prefix = absl::StrFormat("kv/%s/%d", l.name, round);
    auto a = Connect(cluster, 1, true);
    for (int j = 0; j < cell.batch; j += 128) {  // stored 128 pages per call, as engines do
      std::vector<std::string> keys;
      std::vector<std::span<const uint8_t>> values;
      for (int i = j; i < std::min(cell.batch, j + 128); ++i) {
        keys.push_back(absl::StrFormat("%s/0/%d", prefix, i));
        values.push_back(cell.page(0, i));
      }
      for (const absl::Status& s : a->BatchPut(Views(keys), values)) OkOrDie(s, "kv put");
    }
    std::vector<std::string> keys = Keys(prefix, cell, 0);
    auto b = Connect(cluster, 1, true);
    auto hit = [&] {
      auto n = OrDie(b->GetPrefix(Views(keys), cell.into), "kv prefix");
      if (n != keys.size()) Fail("the KV prefix hit was short");
    };
    double copy =
        Time(cell, [&](int) { std::memcpy(copied.data(), cell.source.data(), kv.size()); });
    double first = Time(cell, [&](int) { hit(); });
    if (std::memcmp(kv.data(), cell.source.data(), kv.size()) != 0) Fail("wrong KV bytes");
    double again = Time(cell, [&](int) { hit(); });
    auto view = [&] {
      auto v = OrDie(b->GetPrefixViews(Views(keys)), "kv views");
      if (v.size() != keys.size()) Fail("fewer KV views than pages");
    };
    double views_first = Time(cell, [&](int) { view(); });
    double views = Time(cell, [&](int) { view(); });
    for (auto [op, gbps] : {std::pair{"memcpy", copy},
                            {"prefix-hit-new", first},
                            {"prefix-hit", again},
                            {"views-hit-new", views_first},
                            {"views-hit", views}}) {
      std::printf(
          "samehost op=%s layout=%s page=%lu pages=%d round=%d GBps=%.3f "
          "memcpy_GBps=%.3f\n",
          op, l.name, static_cast<unsigned long>(cell.size), cell.batch, round, gbps, copy);
      Row& row = rows[{op, l.name}];
      row.gbps.push_back(gbps);
      row.ratio.push_back(gbps / copy);
    }
    std::fflush(stdout);
    RemoveAll(*a, cell, prefix);
    WaitForHeldSpace(admin);
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void PrintTable(const Rows& rows, const std::vector<uint64_t>& sizes, const std::string& load0,
                const std::string& load1) {
  std::printf("\nload average (1, 5, 15 min): %s before, %s after\n\n", load0.c_str(),
              load1.c_str());
  std::printf("| call | page | GB/s (median) | memcpy GB/s | x memcpy, median (min-max) |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const char* op : {"memcpy-2", "put-fresh", "put-fresh-ahead", "put-steady", "get-1", "get-2",
                         "prefix", "views"}) {
    for (uint64_t size : sizes) {
      auto it = rows.find({op, size});
      auto base = rows.find({"memcpy", size});
      if (it == rows.end() || base == rows.end()) continue;
      const Row& row = it->second;
      std::printf("| %s | %s | %.2f | %.2f | %.2fx (%.2f-%.2f) |\n", op,
                  unipool::FormatSize(size).c_str(), Median(row.gbps), Median(base->second.gbps),
                  Median(row.ratio), *std::min_element(row.ratio.begin(), row.ratio.end()),
                  *std::max_element(row.ratio.begin(), row.ratio.end()));
    }
  }
}

void PrintKvTable(const std::map<std::pair<std::string, std::string>, Row>& rows) {
  std::printf("\nKV-cache prefix hit, Llama-3-8B, %d tokens (%s), per page layout:\n\n",
              kPrefixTokens,
              unipool::FormatSize(kBytesPerTokenPerLayer * kLayers * kPrefixTokens).c_str());
  std::printf("| call | layout | GB/s (median) | memcpy GB/s | x memcpy, median (min-max) |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const char* op : {"prefix-hit-new", "prefix-hit", "views-hit-new", "views-hit"}) {
    for (const Layout& l : kLayouts) {
      auto it = rows.find({op, l.name});
      auto base = rows.find({"memcpy", l.name});
      if (it == rows.end() || base == rows.end()) continue;
      const Row& row = it->second;
      std::printf("| %s | %s | %.2f | %.2f | %.2fx (%.2f-%.2f) |\n", op, l.name, Median(row.gbps),
                  Median(base->second.gbps), Median(row.ratio),
                  *std::min_element(row.ratio.begin(), row.ratio.end()),
                  *std::max_element(row.ratio.begin(), row.ratio.end()));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-samehost-bench [--sizes 64KiB,256KiB,2MiB] [--batch 128] "
                      "[--total 64MiB] [--max_call_bytes 64MiB] [--rounds 3] [--pool_size 1GiB] "
                      "[--kvcache=false]");
  std::vector<uint64_t> sizes;
  std::vector<std::string> listed = absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',');
  for (const std::string& s : listed) sizes.push_back(SizeFlag(s, "sizes"));
  std::filesystem::path work =
      std::filesystem::temp_directory_path() / absl::StrFormat("unipool-samehost-%d", getpid());
  unipool::LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = SizeFlag(absl::GetFlag(FLAGS_pool_size), "pool_size");
  options.work_dir = work.string();
  options.node_flags = {"--rdma=off"};
  // Removed pages are given back a second after their last read, the
  // clients' unused reservations 5 s after they were handed out.
  options.directory_flags = {"--lease=1s", "--read-capability-lifetime=1s", "--put-timeout=5s"};
  std::string load0 = LoadAverage();
  Rows rows;
  std::map<std::pair<std::string, std::string>, Row> kv_rows;
  {
    auto cluster = OrDie(unipool::LocalCluster::Start(options), "starting the cluster");
    auto admin_client = Connect(*cluster, 1, false);
    unipool::Admin admin(*admin_client);
    for (uint64_t size : sizes) {
      Cell cell = MakeCell(size);
      for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
        Round(*cluster, admin, cell, round, rows);
      }
    }
    if (absl::GetFlag(FLAGS_kvcache)) {
      for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
        KvRound(*cluster, admin, round, kv_rows);
      }
    }
  }
  std::filesystem::remove_all(work);
  PrintTable(rows, sizes, load0, LoadAverage());
  if (!kv_rows.empty()) PrintKvTable(kv_rows);
  return 0;
}
