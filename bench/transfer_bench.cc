// unipool-bench: how fast does unipool move pages, per transport, next to
// what a user would otherwise pick (Redis) and the physical ceiling of the
// same-host path (memcpy), on the same machine in the same run?
//
// Starts a local cluster (one directory, --nodes nodes) and, with --peers,
// Debian's redis-server on loopback (persistence off). For every page size,
// batch size (pages per call) and number of client threads it measures,
// for each system:
//   put  BatchPut of fresh keys (Redis: pipelined SETs), every call timed;
//   get  BatchGet into the caller's buffers (Redis: pipelined GETs read
//        straight into them) of pages this client has read once before, so
//        locations are cached as for a hot prefix; the first, untimed round
//        checks every byte; the faster of two timed rounds is reported;
//   copy (memcpy) the same pages from memory into the same buffers.
// One client (unipool: one Client shared by the threads, one connection
// each; Redis: one connection per thread). Prints one line per measurement,
// throughput in perftest's unit (MB/s = 2^20 bytes/s) and also GB/s (1e9),
// so figures from one machine compare as ratios:
//   unipool op=get size=65536 batch=16 transport=shm MBps=61.2 ops=979 threads=1 GBps=0.064 ...
// bench/report.py turns the lines into bench/RESULTS.md and a plot;
// bench/run.sh runs the whole thing.
//
// --kvcache: engine A stores a prompt prefix's KV cache (Llama-3-8B and
// -70B shapes, in the page layouts of vLLM, SGLang and LMCache) and engine
// B, a fresh client, finds it (exists) and loads it: the prefix hit.
// --single-vs-batch: 128 pages of 64 KiB read with 128 Get calls and with
// one BatchGet, from a fresh client (no cached locations) and a warm one.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <latch>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "redis.h"
#include "unipool/client.h"
#include "unipool/common/process.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/tools/local_cluster.h"

ABSL_FLAG(std::string, transport, "auto",
          "tcp, shm, rc, uc, auto (the client's own choice), all (shm, tcp and rc when this "
          "machine has an RDMA device), or a comma-separated list");
ABSL_FLAG(std::string, sizes, "64KiB,2MiB", "page sizes, comma-separated");
ABSL_FLAG(int, batch, 16, "pages per BatchPut / BatchGet call");
ABSL_FLAG(std::string, batches, "", "several batch sizes, comma-separated (overrides --batch)");
ABSL_FLAG(std::string, threads, "1", "client thread counts, comma-separated");
ABSL_FLAG(std::string, total, "64MiB", "bytes moved per measurement (all threads)");
ABSL_FLAG(int, min_calls, 3, "calls per thread per measurement, at least");
ABSL_FLAG(int, max_calls, 2000, "calls per thread per measurement, at most");
ABSL_FLAG(std::string, max_call_bytes, "256MiB",
          "skip batch x size above this (the pool, Redis and the buffers hold a few of them)");
ABSL_FLAG(std::string, peers, "", "baselines in the same run: redis, memcpy (comma-separated)");
ABSL_FLAG(std::string, redis_server, "redis-server", "the redis-server binary");
ABSL_FLAG(bool, kvcache, false, "run the KV-cache prefix-hit mode instead of the sweep");
ABSL_FLAG(int, prefix_tokens, 2048, "--kvcache: tokens in the shared prompt prefix");
ABSL_FLAG(bool, single_vs_batch, false,
          "run the single-gets-versus-one-batch comparison instead of the sweep");
ABSL_FLAG(int, nodes, 1, "pool nodes");
ABSL_FLAG(std::string, pool_size, "256MiB",
          "slab of each node (grown to what the largest measurement needs)");
ABSL_FLAG(std::string, directory_sync, "everysec",
          "the directory's --sync: everysec (its default: commits in its log before the reply, "
          "fsync'ed every 100 ms) or always (fsync'ed before the reply, group commit)");

namespace unipool {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "unipool-bench: %s\n", what.c_str());
  std::fflush(stderr);
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(what + ": " + value.status().ToString());
  return std::move(*value);
}

void OkOrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    out.emplace_back(part.data(), part.size());
  }
  return out;
}

std::vector<uint64_t> SizeList(const std::string& text, const char* flag) {
  std::vector<uint64_t> out;
  for (const std::string& s : SplitList(text)) {
    out.push_back(OrDie(ParseSize(s), absl::StrFormat("--%s %s", flag, s)));
  }
  return out;
}

std::vector<int> IntList(const std::string& text, const char* flag) {
  std::vector<int> out;
  for (const std::string& s : SplitList(text)) {
    int v = std::atoi(s.c_str());
    if (v <= 0) Fail(absl::StrFormat("--%s: '%s' is not a positive number", flag, s));
    out.push_back(v);
  }
  return out;
}

// ------------------------------------------------------------ measurements

// One measurement: calls of `batch` pages of `size` bytes by `threads`
// threads; latency per call.
struct Result {
  double seconds = 0;
  uint64_t pages = 0;
  uint64_t bytes = 0;
  std::vector<double> call_us;
  uint64_t directory_requests = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Print(const std::string& system, const std::string& op, uint64_t size, int batch,
           const std::string& transport, int threads, const Result& r) {
  double mib = static_cast<double>(r.bytes) / (1 << 20);
  absl::PrintF(
      "%s op=%s size=%u batch=%d transport=%s MBps=%.1f ops=%.0f threads=%d GBps=%.3f "
      "p50_us=%.1f p99_us=%.1f calls=%u directory_requests=%u\n",
      system.c_str(), op.c_str(), size, batch, transport.c_str(), mib / r.seconds,
      r.pages / r.seconds, threads, r.bytes / r.seconds / 1e9, Percentile(r.call_us, 0.50),
      Percentile(r.call_us, 0.99), r.call_us.size(), r.directory_requests);
  std::fflush(stdout);
}

// Runs body(thread, call) for calls [0, calls) on each of `threads` threads
// at once and times each call. A failing call ends the program.
Result RunThreads(int threads, int calls, uint64_t pages_per_call, uint64_t size,
                  const std::function<absl::Status(int thread, int call)>& body) {
  std::vector<std::vector<double>> lat(threads);
  std::latch start(threads);
  std::vector<std::thread> workers;
  std::vector<absl::Status> failed(threads);
  // The measurement runs from the first thread's start to the last one's end.
  std::vector<Clock::time_point> began(threads), ended(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      lat[t].reserve(calls);
      start.arrive_and_wait();
      began[t] = Clock::now();
      struct End {
        Clock::time_point* at;
        ~End() { *at = Clock::now(); }
      } end{&ended[t]};
      for (int c = 0; c < calls; ++c) {
        auto begin = Clock::now();
        absl::Status s = body(t, c);
        lat[t].push_back(SecondsSince(begin) * 1e6);
        if (!s.ok()) {
          failed[t] = s;
          return;
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  Result r;
  r.seconds = std::chrono::duration<double>(*std::max_element(ended.begin(), ended.end()) -
                                            *std::min_element(began.begin(), began.end()))
                  .count();
  for (int t = 0; t < threads; ++t) {
    OkOrDie(failed[t], absl::StrFormat("thread %d", t));
    r.call_us.insert(r.call_us.end(), lat[t].begin(), lat[t].end());
  }
  r.pages = static_cast<uint64_t>(threads) * calls * pages_per_call;
  r.bytes = r.pages * size;
  return r;
}

// The faster of two timed rounds of the same reads: on a machine shared
// with other work, a round that other processes slowed down says little
// about the system measured.
Result Best(Result a, Result b) { return a.seconds <= b.seconds ? a : b; }

// Pages of one thread for one page size: distinct contents (a per-page
// header over a shared random pattern), their keys, and the buffers a
// batch is read into.
struct ThreadPages {
  std::vector<uint8_t> source;  // page i at i * size
  std::vector<std::vector<uint8_t>> out;
  uint64_t size = 0;

  std::span<const uint8_t> page(size_t i) const { return {source.data() + i * size, size}; }
};

ThreadPages MakePages(int thread, uint64_t size, uint64_t pages, int max_batch) {
  ThreadPages p;
  p.size = size;
  p.source.resize(pages * size);
  // A random pattern of 1 MiB + 8 bytes, repeated at shifting offsets.
  constexpr size_t kPattern = (1 << 20) + 8;
  std::vector<uint8_t> pattern(kPattern);
  uint64_t x = 0x9e3779b97f4a7c15ull * (thread + 1) ^ size;
  for (size_t i = 0; i + 8 <= kPattern; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&pattern[i], &x, 8);
  }
  for (uint64_t i = 0; i < pages; ++i) {
    uint8_t* page = p.source.data() + i * size;
    for (uint64_t done = 0; done < size;) {
      size_t from = (i * 7919 + done) % (kPattern - 8);
      size_t n = std::min<uint64_t>(size - done, kPattern - from);
      std::memcpy(page + done, &pattern[from], n);
      done += n;
    }
    uint64_t header[2] = {i, static_cast<uint64_t>(thread)};
    std::memcpy(page, header, std::min<uint64_t>(size, sizeof header));
  }
  p.out.assign(max_batch, std::vector<uint8_t>(size, 0));
  return p;
}

// A cheap check of a timed read (the untimed round checks every byte).
bool LooksRight(std::span<const uint8_t> got, std::span<const uint8_t> want) {
  size_t n = std::min<size_t>(16, want.size());
  return got.size() >= want.size() && std::memcmp(got.data(), want.data(), n) == 0 &&
         std::memcmp(got.data() + want.size() - n, want.data() + want.size() - n, n) == 0;
}

// ----------------------------------------------------------------- systems

// Every system under test moves the same pages the same way.
class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;       // "unipool", "redis", "memcpy"
  virtual std::string transport() const = 0;  // as used
  virtual absl::Status Put(int thread, std::span<const std::string_view> keys,
                           std::span<const std::span<const uint8_t>> values) = 0;
  virtual absl::Status Get(int thread, std::span<const std::string_view> keys,
                           std::span<const std::span<uint8_t>> buffers) = 0;
  virtual absl::Status Remove(int thread, std::span<const std::string_view> keys) = 0;
  // Requests to the directory so far (unipool only), to show what a
  // measurement cost beyond moving bytes.
  virtual uint64_t directory_requests() const { return 0; }
};

class UnipoolSystem : public System {
 public:
  UnipoolSystem(std::unique_ptr<Client> client, std::string asked)
      : client_(std::move(client)), asked_(std::move(asked)) {}
  std::string name() const override { return "unipool"; }
  std::string transport() const override {
    ClientStats s = client_->stats();
    return s.node_requests == 0 ? asked_ : s.transport;
  }
  absl::Status Put(int, std::span<const std::string_view> keys,
                   std::span<const std::span<const uint8_t>> values) override {
    for (const absl::Status& s : client_->BatchPut(keys, values)) RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }
  absl::Status Get(int, std::span<const std::string_view> keys,
                   std::span<const std::span<uint8_t>> buffers) override {
    for (const auto& got : client_->BatchGet(keys, buffers)) RETURN_IF_ERROR(got.status());
    return absl::OkStatus();
  }
  absl::Status Remove(int, std::span<const std::string_view> keys) override {
    for (const absl::Status& s : client_->BatchRemove(keys)) RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }
  Client& client() { return *client_; }
  uint64_t directory_requests() const override { return client_->stats().directory_requests; }

 private:
  std::unique_ptr<Client> client_;
  std::string asked_;
};

class RedisSystem : public System {
 public:
  RedisSystem(const std::string& address, int threads) {
    for (int t = 0; t < threads; ++t) {
      connections_.push_back(OrDie(bench::RedisConnection::Open(address), "redis connect"));
    }
  }
  std::string name() const override { return "redis"; }
  std::string transport() const override { return "tcp"; }
  absl::Status Put(int t, std::span<const std::string_view> keys,
                   std::span<const std::span<const uint8_t>> values) override {
    return connections_[t]->BatchSet(keys, values);
  }
  absl::Status Get(int t, std::span<const std::string_view> keys,
                   std::span<const std::span<uint8_t>> buffers) override {
    return connections_[t]->BatchGet(keys, buffers);
  }
  absl::Status Remove(int t, std::span<const std::string_view> keys) override {
    for (size_t i = 0; i < keys.size(); i += 1024) {
      RETURN_IF_ERROR(
          connections_[t]->Delete(keys.subspan(i, std::min<size_t>(1024, keys.size() - i))));
    }
    return absl::OkStatus();
  }
  bench::RedisConnection& connection(int t) { return *connections_[t]; }

 private:
  std::vector<std::unique_ptr<bench::RedisConnection>> connections_;
};

// ------------------------------------------------------------------- sweep

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
  auto key_views = [&](int t, int call) {
    return std::vector<std::string_view>(keys[t].begin() + call * batch,
                                         keys[t].begin() + (call + 1) * batch);
  };
  auto buffers = [&](int t) {
    std::vector<std::span<uint8_t>> b;
    for (int j = 0; j < batch; ++j) b.emplace_back(pages[t].out[j].data(), cell.size);
    return b;
  };
  Result put = RunThreads(cell.threads, cell.calls, batch, cell.size, [&](int t, int call) {
    std::vector<std::span<const uint8_t>> values;
    for (int j = 0; j < batch; ++j) values.push_back(pages[t].page(call * batch + j));
    return system.Put(t, key_views(t, call), values);
  });
  // Every byte, once, untimed (this also caches the locations).
  RunThreads(cell.threads, cell.calls, batch, cell.size, [&](int t, int call) {
    auto into = buffers(t);
    RETURN_IF_ERROR(system.Get(t, key_views(t, call), into));
    for (int j = 0; j < batch; ++j) {
      auto want = pages[t].page(call * batch + j);
      if (std::memcmp(into[j].data(), want.data(), want.size()) != 0) {
        return absl::DataLossError(
            absl::StrFormat("%s: wrong bytes for %s", system.name(), keys[t][call * batch + j]));
      }
    }
    return absl::OkStatus();
  });
  uint64_t directory_before = system.directory_requests();
  auto timed_get = [&](int t, int call) {
    auto into = buffers(t);
    RETURN_IF_ERROR(system.Get(t, key_views(t, call), into));
    for (int j = 0; j < batch; ++j) {
      if (!LooksRight(into[j], pages[t].page(call * batch + j))) {
        return absl::DataLossError(absl::StrFormat("%s: wrong bytes", system.name()));
      }
    }
    return absl::OkStatus();
  };
  Result get = Best(RunThreads(cell.threads, cell.calls, batch, cell.size, timed_get),
                    RunThreads(cell.threads, cell.calls, batch, cell.size, timed_get));
  get.directory_requests = system.directory_requests() - directory_before;
  std::string transport = system.transport();
  Print(system.name(), "put", cell.size, batch, transport, cell.threads, put);
  Print(system.name(), "get", cell.size, batch, transport, cell.threads, get);
  for (int t = 0; t < cell.threads; ++t) {
    std::vector<std::string_view> all(keys[t].begin(), keys[t].end());
    OkOrDie(system.Remove(t, all), system.name() + " remove");
  }
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

// ------------------------------------------------------------------ set-up

struct Setup {
  std::unique_ptr<LocalCluster> cluster;
  std::unique_ptr<bench::RedisServer> redis;
  std::string work_dir;
};

std::unique_ptr<Client> ConnectClient(const LocalCluster& cluster, const std::string& transport,
                                      bool require) {
  ClientOptions options;
  options.directory = cluster.directory_address();
  options.name = "unipool-bench";
  options.io_timeout = absl::Seconds(120);
  options.max_idle_connections = 16;
  if (transport == "shm") {
    options.rdma = RdmaPolicy::kOff;
    options.shm = true;
  } else if (transport == "tcp") {
    options.rdma = RdmaPolicy::kOff;
    options.shm = false;
  } else if (transport == "auto") {
    options.rdma = RdmaPolicy::kAuto;
    options.shm = true;
  } else {
    options.rdma = OrDie(ParseRdmaPolicy(transport), "--transport");  // rc, uc
    options.shm = false;
  }
  auto client = Client::Connect(options);
  if (!client.ok()) {
    if (require) Fail(absl::StrFormat("--transport %s: %s", transport, client.status().ToString()));
    return nullptr;
  }
  return std::move(*client);
}

std::vector<std::string> Transports(const LocalCluster& cluster) {
  std::vector<std::string> out;
  for (const std::string& t : SplitList(absl::GetFlag(FLAGS_transport))) {
    if (t == "all") {
      out.push_back("shm");
      out.push_back("tcp");
      if (ConnectClient(cluster, "rc", false) != nullptr) out.push_back("rc");
    } else if (t == "tcp" || t == "shm" || t == "rc" || t == "uc" || t == "auto") {
      out.push_back(t);
    } else {
      Fail(absl::StrFormat("--transport: unknown '%s'", t));
    }
  }
  return out;
}

Setup StartSystems(uint64_t biggest_measurement, bool with_redis) {
  Setup setup;
  setup.work_dir =
      (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-bench-%d", getpid()))
          .string();
  LocalClusterOptions options;
  options.nodes = absl::GetFlag(FLAGS_nodes);
  uint64_t pool = OrDie(ParseSize(absl::GetFlag(FLAGS_pool_size)), "--pool-size");
  // Removed pages stay held while their read lease lasts (2 s here), and
  // the pool evicts above 90% full: room for several measurements at once.
  // Memory is only used as pages are written.
  uint64_t needed = (8 * biggest_measurement + (256 << 20)) / options.nodes;
  options.pool_size = std::max(pool, needed);
  options.node_timeout = absl::Seconds(15);
  options.work_dir = setup.work_dir;
  options.directory_flags.push_back("--sync=" + absl::GetFlag(FLAGS_directory_sync));
  options.directory_flags.push_back("--lease=2s");
  setup.cluster = OrDie(LocalCluster::Start(options), "starting the cluster");
  std::fprintf(stderr, "unipool-bench: %d node(s) of %s, directory --sync=%s\n", options.nodes,
               FormatSize(options.pool_size).c_str(), absl::GetFlag(FLAGS_directory_sync).c_str());
  if (with_redis) {
    setup.redis = OrDie(
        bench::RedisServer::Start(absl::GetFlag(FLAGS_redis_server), setup.work_dir + "/redis"),
        "starting redis-server");
    absl::PrintF("peer redis version=%s address=%s persistence=off\n",
                 setup.redis->version().c_str(), setup.redis->address().c_str());
  }
  return setup;
}

int Sweep() {
  std::vector<uint64_t> sizes = SizeList(absl::GetFlag(FLAGS_sizes), "sizes");
  std::vector<int> batches = absl::GetFlag(FLAGS_batches).empty()
                                 ? std::vector<int>{absl::GetFlag(FLAGS_batch)}
                                 : IntList(absl::GetFlag(FLAGS_batches), "batches");
  std::vector<int> thread_counts = IntList(absl::GetFlag(FLAGS_threads), "threads");
  uint64_t total = OrDie(ParseSize(absl::GetFlag(FLAGS_total)), "--total");
  uint64_t max_call = OrDie(ParseSize(absl::GetFlag(FLAGS_max_call_bytes)), "--max-call-bytes");
  std::vector<std::string> peers = SplitList(absl::GetFlag(FLAGS_peers));
  bool with_redis = std::find(peers.begin(), peers.end(), "redis") != peers.end();
  bool with_memcpy = std::find(peers.begin(), peers.end(), "memcpy") != peers.end();

  std::vector<Cell> cells;
  uint64_t biggest = 0;
  for (uint64_t size : sizes) {
    for (int batch : batches) {
      for (int threads : thread_counts) {
        if (size * batch > max_call) {
          absl::PrintF("skip size=%u batch=%d threads=%d reason=batch_x_size_over_%u\n", size,
                       batch, threads, max_call);
          continue;
        }
        Cell cell{size, batch, threads, CallsFor(total, size, batch, threads)};
        biggest = std::max<uint64_t>(biggest, size * batch * cell.calls * threads);
        cells.push_back(cell);
      }
    }
  }
  Setup setup = StartSystems(biggest, with_redis);
  std::vector<std::unique_ptr<UnipoolSystem>> unipool;
  for (const std::string& t : Transports(*setup.cluster)) {
    unipool.push_back(std::make_unique<UnipoolSystem>(ConnectClient(*setup.cluster, t, true), t));
  }
  std::unique_ptr<RedisSystem> redis;
  if (with_redis) {
    int most = *std::max_element(thread_counts.begin(), thread_counts.end());
    redis = std::make_unique<RedisSystem>(setup.redis->address(), most);
  }
  uint64_t run = 0;
  for (uint64_t size : sizes) {
    // The pages of every cell of this size, made once.
    std::vector<ThreadPages> pages;
    int most_threads = 0, most_batch = 0;
    uint64_t most_pages = 0;
    for (const Cell& c : cells) {
      if (c.size != size) continue;
      most_threads = std::max(most_threads, c.threads);
      most_batch = std::max(most_batch, c.batch);
      most_pages = std::max<uint64_t>(most_pages, static_cast<uint64_t>(c.calls) * c.batch);
    }
    for (int t = 0; t < most_threads; ++t)
      pages.push_back(MakePages(t, size, most_pages, most_batch));
    for (const Cell& cell : cells) {
      if (cell.size != size) continue;
      if (with_memcpy) MeasureMemcpy(cell, pages);
      for (auto& u : unipool) MeasureSystem(*u, cell, pages, ++run);
      if (redis != nullptr) MeasureSystem(*redis, cell, pages, ++run);
    }
  }
  std::filesystem::remove_all(setup.work_dir);
  return 0;
}

// ----------------------------------------------------------------- kvcache

struct Model {
  const char* name;
  int layers;
};
constexpr Model kModels[] = {{"llama3-8b", 32}, {"llama3-70b", 80}};
// BF16, 8 KV heads x head dim 128: K and V, 2 bytes each.
constexpr uint64_t kBytesPerTokenPerLayer = 2 * 8 * 128 * 2;
static_assert(kBytesPerTokenPerLayer == 4096);

struct Layout {
  const char* name;
  int tokens;       // per page
  bool all_layers;  // a page holds every layer (else one layer)
};
constexpr Layout kLayouts[] = {{"vllm-layer", 16, false},
                               {"sglang-layer", 64, false},
                               {"vllm-block", 16, true},
                               {"lmcache-chunk", 256, true}};
// Pages per call, as an engine loading a prefix layer by layer would.
constexpr int kKvBatch = 128;

void PrintKv(const Model& m, const Layout& l, uint64_t page, uint64_t pages,
             const std::string& system, double put_s, double hit_s) {
  double bytes = static_cast<double>(page) * pages;
  absl::PrintF(
      "kvcache model=%s layout=%s page=%u pages=%u prefix_tokens=%d system=%s put_ms=%.2f "
      "hit_ms=%.2f put_GBps=%.3f hit_GBps=%.3f\n",
      m.name, l.name, page, pages, absl::GetFlag(FLAGS_prefix_tokens), system.c_str(), put_s * 1e3,
      hit_s * 1e3, bytes / put_s / 1e9, bytes / hit_s / 1e9);
  std::fflush(stdout);
}

int KvCache() {
  const int tokens = absl::GetFlag(FLAGS_prefix_tokens);
  uint64_t biggest = 0;
  for (const Model& m : kModels) {
    biggest = std::max<uint64_t>(biggest, kBytesPerTokenPerLayer * tokens * m.layers);
  }
  std::vector<std::string> peers = SplitList(absl::GetFlag(FLAGS_peers));
  bool with_redis = std::find(peers.begin(), peers.end(), "redis") != peers.end();
  Setup setup = StartSystems(biggest, with_redis);
  std::vector<std::string> transports = Transports(*setup.cluster);
  uint64_t run = 0;
  for (const Model& m : kModels) {
    for (const Layout& l : kLayouts) {
      uint64_t page = kBytesPerTokenPerLayer * l.tokens * (l.all_layers ? m.layers : 1);
      uint64_t pages = static_cast<uint64_t>(tokens / l.tokens) * (l.all_layers ? 1 : m.layers);
      if (pages == 0) continue;
      ThreadPages data =
          MakePages(0, page, pages, static_cast<int>(std::min<uint64_t>(pages, kKvBatch)));
      // The engine's destination: its paged KV memory, one slot per page.
      std::vector<uint8_t> kv_memory(page * pages);
      std::vector<std::string> keys;
      for (uint64_t i = 0; i < pages; ++i) {
        keys.push_back(absl::StrFormat("%s/%s/prefix-%u/%u", m.name, l.name, run, i));
      }
      auto check = [&](const std::string& who) {
        if (std::memcmp(kv_memory.data(), data.source.data(), kv_memory.size()) != 0) {
          Fail(who + ": the loaded prefix differs from what was stored");
        }
        std::fill(kv_memory.begin(), kv_memory.end(), 0);
      };
      auto slots = [&](size_t first, size_t n) {
        std::vector<std::span<uint8_t>> s;
        for (size_t i = first; i < first + n; ++i)
          s.emplace_back(kv_memory.data() + i * page, page);
        return s;
      };
      for (const std::string& t : transports) {
        ++run;
        for (uint64_t i = 0; i < pages; ++i) {
          keys[i] = absl::StrFormat("%s/%s/prefix-%u/%u", m.name, l.name, run, i);
        }
        std::vector<std::string_view> k(keys.begin(), keys.end());
        auto engine_a = ConnectClient(*setup.cluster, t, true);
        auto begin = Clock::now();
        for (size_t i = 0; i < pages; i += kKvBatch) {
          size_t n = std::min<size_t>(kKvBatch, pages - i);
          std::vector<std::span<const uint8_t>> values;
          for (size_t j = i; j < i + n; ++j) values.push_back(data.page(j));
          for (const absl::Status& s : engine_a->BatchPut({k.data() + i, n}, values)) {
            OkOrDie(s, "kvcache put");
          }
        }
        double put_s = SecondsSince(begin);
        auto engine_b = ConnectClient(*setup.cluster, t, true);  // no cached locations
        begin = Clock::now();
        for (const absl::StatusOr<bool>& exists : engine_b->BatchExists(k)) {
          if (!OrDie(exists, "kvcache exists")) Fail("kvcache: prefix not found");
        }
        for (size_t i = 0; i < pages; i += kKvBatch) {
          size_t n = std::min<size_t>(kKvBatch, pages - i);
          auto into = slots(i, n);
          for (const auto& got : engine_b->BatchGet({k.data() + i, n}, into)) {
            OkOrDie(got.status(), "kvcache get");
          }
        }
        double hit_s = SecondsSince(begin);
        std::string used = engine_b->stats().transport;
        check("unipool-" + used);
        PrintKv(m, l, page, pages, "unipool-" + used, put_s, hit_s);
        for (const absl::Status& s : engine_a->BatchRemove(k)) OkOrDie(s, "kvcache remove");
      }
      if (setup.redis != nullptr) {
        ++run;
        for (uint64_t i = 0; i < pages; ++i) {
          keys[i] = absl::StrFormat("%s/%s/prefix-%u/%u", m.name, l.name, run, i);
        }
        std::vector<std::string_view> views(keys.begin(), keys.end());
        auto a = OrDie(bench::RedisConnection::Open(setup.redis->address()), "redis");
        auto begin = Clock::now();
        for (size_t i = 0; i < pages; i += kKvBatch) {
          size_t n = std::min<size_t>(kKvBatch, pages - i);
          std::vector<std::span<const uint8_t>> values;
          for (size_t j = i; j < i + n; ++j) values.push_back(data.page(j));
          OkOrDie(a->BatchSet({views.data() + i, n}, values), "redis set");
        }
        double put_s = SecondsSince(begin);
        auto b = OrDie(bench::RedisConnection::Open(setup.redis->address()), "redis");
        begin = Clock::now();
        if (OrDie(b->Exists(views), "redis exists") != static_cast<int64_t>(pages)) {
          Fail("redis: prefix not found");
        }
        for (size_t i = 0; i < pages; i += kKvBatch) {
          size_t n = std::min<size_t>(kKvBatch, pages - i);
          auto into = slots(i, n);
          OkOrDie(b->BatchGet({views.data() + i, n}, into), "redis get");
        }
        double hit_s = SecondsSince(begin);
        check("redis");
        PrintKv(m, l, page, pages, "redis", put_s, hit_s);
        for (size_t i = 0; i < pages; i += 1024) {
          OkOrDie(a->Delete({views.data() + i, std::min<size_t>(1024, pages - i)}), "redis del");
        }
      }
    }
  }
  std::filesystem::remove_all(setup.work_dir);
  return 0;
}

// --------------------------------------------------------- single vs batch

// 128 pages of 64 KiB: 128 Get calls against one BatchGet of 128, from a
// fresh client (every location looked up) and from a warm one. Median of
// kRepeats.
int SingleVsBatch() {
  constexpr int kPages = 128;
  constexpr uint64_t kSize = 64 << 10;
  constexpr int kRepeats = 7;
  std::vector<std::string> peers = SplitList(absl::GetFlag(FLAGS_peers));
  bool with_redis = std::find(peers.begin(), peers.end(), "redis") != peers.end();
  Setup setup = StartSystems(kPages * kSize * 4, with_redis);
  ThreadPages data = MakePages(0, kSize, kPages, kPages);
  std::vector<std::string> keys;
  for (int i = 0; i < kPages; ++i) keys.push_back(absl::StrFormat("svb/%d", i));
  std::vector<std::string_view> k(keys.begin(), keys.end());
  std::vector<std::span<const uint8_t>> values;
  for (int i = 0; i < kPages; ++i) values.push_back(data.page(i));
  std::vector<std::span<uint8_t>> into;
  for (auto& o : data.out) into.emplace_back(o);
  auto median = [](std::vector<double> v) { return Percentile(std::move(v), 0.5); };
  auto print = [&](const std::string& system, const char* cache, double single_s, double batch_s) {
    absl::PrintF(
        "single-vs-batch system=%s size=%u pages=%d cache=%s single_ms=%.3f batch_ms=%.3f "
        "speedup=%.2f\n",
        system.c_str(), kSize, kPages, cache, single_s * 1e3, batch_s * 1e3, single_s / batch_s);
    std::fflush(stdout);
  };
  for (const std::string& t : Transports(*setup.cluster)) {
    auto writer = ConnectClient(*setup.cluster, t, true);
    for (const absl::Status& s : writer->BatchPut(k, values)) OkOrDie(s, "put");
    std::vector<double> cold_single, cold_batch, warm_single, warm_batch;
    std::string used;
    for (int r = 0; r < kRepeats; ++r) {
      auto c = ConnectClient(*setup.cluster, t, true);
      auto begin = Clock::now();
      for (int i = 0; i < kPages; ++i) OkOrDie(c->Get(k[i], into[i]).status(), "get");
      cold_single.push_back(SecondsSince(begin));
      begin = Clock::now();
      for (int i = 0; i < kPages; ++i) OkOrDie(c->Get(k[i], into[i]).status(), "get");
      warm_single.push_back(SecondsSince(begin));
      auto d = ConnectClient(*setup.cluster, t, true);
      begin = Clock::now();
      for (const auto& got : d->BatchGet(k, into)) OkOrDie(got.status(), "batch get");
      cold_batch.push_back(SecondsSince(begin));
      begin = Clock::now();
      for (const auto& got : d->BatchGet(k, into)) OkOrDie(got.status(), "batch get");
      warm_batch.push_back(SecondsSince(begin));
      used = d->stats().transport;
    }
    for (int i = 0; i < kPages; ++i) {
      if (std::memcmp(into[i].data(), values[i].data(), kSize) != 0)
        Fail("single-vs-batch: wrong bytes");
    }
    print("unipool-" + used, "cold", median(cold_single), median(cold_batch));
    print("unipool-" + used, "warm", median(warm_single), median(warm_batch));
    for (const absl::Status& s : writer->BatchRemove(k)) OkOrDie(s, "remove");
  }
  if (setup.redis != nullptr) {
    auto conn = OrDie(bench::RedisConnection::Open(setup.redis->address()), "redis");
    OkOrDie(conn->BatchSet(k, values), "redis set");
    std::vector<double> single, batch;
    for (int r = 0; r < kRepeats; ++r) {
      auto begin = Clock::now();
      for (int i = 0; i < kPages; ++i) {
        OkOrDie(conn->BatchGet({&k[i], 1}, {&into[i], 1}), "redis get");
      }
      single.push_back(SecondsSince(begin));
      begin = Clock::now();
      OkOrDie(conn->BatchGet(k, into), "redis batch get");
      batch.push_back(SecondsSince(begin));
    }
    print("redis", "none", median(single), median(batch));
    OkOrDie(conn->Delete(k), "redis del");
  }
  std::filesystem::remove_all(setup.work_dir);
  return 0;
}

}  // namespace
}  // namespace unipool

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-bench [--transport tcp|shm|rc|uc|auto|all] [--sizes 64KiB,2MiB] "
                      "[--batch 16 | --batches 1,16,128] [--threads 1,2] [--total 64MiB] "
                      "[--peers redis,memcpy] [--kvcache | --single-vs-batch]");
  if (absl::GetFlag(FLAGS_kvcache)) return unipool::KvCache();
  if (absl::GetFlag(FLAGS_single_vs_batch)) return unipool::SingleVsBatch();
  return unipool::Sweep();
}
