// unipool-bench: how fast does unipool move pages, per transport?
//
// Starts a local cluster (one directory, --nodes nodes), then for each page
// size puts --total bytes of pages in batches of --batch and reads them back
// the same way, from one client using --transport (tcp, rc, uc or auto).
// Prints one line per measurement, in perftest's unit (MB/s = 2^20 bytes/s)
// so figures from the same machine can be compared as ratios:
//   unipool op=get size=65536 batch=16 transport=rdma-rc MBps=61.2 ops=979
// Every page read back is checked byte for byte; a mismatch is an error.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/units.h"
#include "tools/local_cluster.h"
#include "tools/process.h"
#include "unipool/client.h"

ABSL_FLAG(std::string, transport, "auto", "tcp, rc, uc or auto (ClientOptions::rdma)");
ABSL_FLAG(std::string, sizes, "64KiB,2MiB", "page sizes, comma-separated");
ABSL_FLAG(int, batch, 16, "pages per BatchPut / BatchGet call");
ABSL_FLAG(std::string, total, "64MiB", "bytes moved per measurement");
ABSL_FLAG(int, nodes, 1, "pool nodes");
ABSL_FLAG(std::string, pool_size, "256MiB", "slab of each node");

namespace unipool {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Run() {
  auto total = ParseSize(absl::GetFlag(FLAGS_total));
  auto pool_size = ParseSize(absl::GetFlag(FLAGS_pool_size));
  if (!total.ok() || !pool_size.ok()) {
    std::fprintf(stderr, "unipool-bench: bad --total or --pool-size\n");
    return 2;
  }
  std::vector<uint64_t> sizes;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',')) {
    auto size = ParseSize(std::string_view(s.data(), s.size()));
    if (!size.ok()) {
      std::fprintf(stderr, "unipool-bench: --sizes: %s\n", std::string(size.status().message()).c_str());
      return 2;
    }
    sizes.push_back(*size);
  }
  LocalClusterOptions options;
  options.nodes = absl::GetFlag(FLAGS_nodes);
  options.pool_size = *pool_size;
  options.node_timeout = absl::Seconds(15);
  options.work_dir = (std::filesystem::temp_directory_path() /
                      absl::StrFormat("unipool-bench-%d", getpid())).string();
  auto cluster = LocalCluster::Start(options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "unipool-bench: %s\n", std::string(cluster.status().message()).c_str());
    return 1;
  }
  ClientOptions client_options;
  client_options.directory = (*cluster)->directory_address();
  std::string transport = absl::GetFlag(FLAGS_transport);
  client_options.rdma = transport == "tcp" ? "off" : transport;
  client_options.io_timeout = absl::Seconds(120);
  auto client = Client::Connect(client_options);
  if (!client.ok()) {
    std::fprintf(stderr, "unipool-bench: %s\n", std::string(client.status().message()).c_str());
    return 1;
  }
  int batch = absl::GetFlag(FLAGS_batch);
  for (uint64_t size : sizes) {
    int pages = static_cast<int>(std::max<uint64_t>(1, *total / size));
    pages = (pages + batch - 1) / batch * batch;
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> values;
    for (int i = 0; i < pages; ++i) {
      keys.push_back(absl::StrFormat("bench/%u/%d", size, i));
      values.emplace_back(size, static_cast<uint8_t>(i * 131 + size));
    }
    auto put_start = std::chrono::steady_clock::now();
    for (int i = 0; i < pages; i += batch) {
      std::vector<std::string_view> k(keys.begin() + i, keys.begin() + i + batch);
      std::vector<std::span<const uint8_t>> v(values.begin() + i, values.begin() + i + batch);
      for (const auto& s : (*client)->BatchPut(k, v)) {
        if (!s.ok()) {
          std::fprintf(stderr, "unipool-bench: put: %s\n", s.ToString().c_str());
          return 1;
        }
      }
    }
    double put_seconds = Seconds(put_start);
    std::vector<std::vector<uint8_t>> out(batch, std::vector<uint8_t>(size));
    auto get_start = std::chrono::steady_clock::now();
    for (int i = 0; i < pages; i += batch) {
      std::vector<std::string_view> k(keys.begin() + i, keys.begin() + i + batch);
      std::vector<std::span<uint8_t>> into(out.begin(), out.end());
      auto got = (*client)->BatchGet(k, into);
      for (int j = 0; j < batch; ++j) {
        if (!got[j].ok() || out[j] != values[i + j]) {
          std::fprintf(stderr, "unipool-bench: get %s: %s\n", keys[i + j].c_str(),
                       got[j].ok() ? "wrong bytes" : got[j].status().ToString().c_str());
          return 1;
        }
      }
    }
    double get_seconds = Seconds(get_start);
    std::string used = (*client)->stats().transport;
    double mib = static_cast<double>(pages) * size / (1 << 20);
    std::printf("unipool op=put size=%u batch=%d transport=%s MBps=%.1f ops=%.0f\n", size, batch,
                used.c_str(), mib / put_seconds, pages / put_seconds);
    std::printf("unipool op=get size=%u batch=%d transport=%s MBps=%.1f ops=%.0f\n", size, batch,
                used.c_str(), mib / get_seconds, pages / get_seconds);
    std::fflush(stdout);
    std::vector<std::string_view> all(keys.begin(), keys.end());
    (*client)->BatchRemove(all);
  }
  std::filesystem::remove_all(options.work_dir);
  return 0;
}

}  // namespace
}  // namespace unipool

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-bench [--transport tcp|rc|uc|auto] [--sizes 64KiB,2MiB] "
                      "[--batch 16] [--total 64MiB]");
  return unipool::Run();
}
