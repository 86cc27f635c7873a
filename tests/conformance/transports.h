// The transports the data-path conformance suite (data_path_test.cc) runs
// against, each described once: the node flags and client options that
// select it, a workload sized for where it runs (the host, or the Soft-RoCE
// VM, which moves ~50 MB/s), and what the client's stats must show after.
// A new transport adds one function here and inherits every case.
#ifndef UNIPOOL_TESTS_CONFORMANCE_TRANSPORTS_H_
#define UNIPOOL_TESTS_CONFORMANCE_TRANSPORTS_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/client.h"

namespace unipool::testing {

struct TransportSetup {
  // What ClientStats::transport says when this transport served the bytes,
  // and what every node advertises: "tcp", "shm", "rdma-rc", "rdma-uc".
  std::string name;
  // Extra unipool-node flags.
  std::vector<std::string> node_flags;
  // Client options selecting the transport (the directory is filled in).
  ClientOptions client;
  // The directory's node timeout (a VM under TCG heartbeats late).
  absl::Duration node_timeout = absl::Seconds(3);
  // Slab size of each of the three nodes.
  uint64_t pool_size = 64ull << 20;
  // Set in this process before a cluster starts (its nodes inherit it).
  std::vector<std::pair<std::string, std::string>> environment;
  // Losses are injected on this transport: the client must show retries.
  bool lossy = false;
  // Slow enough (the VM) that the directory may mark a killed node down
  // before a first pass over its pages ends: then either error is right.
  bool slow = false;

  // The MixedPagesFromSeveralThreads workload: `threads` threads put and get
  // `pages_per_thread` pages each, of page_size(index) bytes.
  int threads = 4;
  int pages_per_thread = 250;
  std::function<size_t(int index)> page_size;
  size_t max_page_size = 8 << 20;
};

// Page bytes over TCP frames (shared memory off, RDMA off). Host-sized:
// 1,000 pages of 4 KiB .. 8 MiB (~1.1 GiB).
TransportSetup TcpTransport();
// Page bytes through the nodes' slabs mapped into the client.
TransportSetup ShmTransport();
// RDMA in `mode` ("rc" or "uc") on $UNIPOOL_RDMA_DEVICE. VM-sized: 1,002
// pages weighted as KV caches are (~200 MB).
TransportSetup RdmaTransport(const std::string& mode);

// The page bytes went over `setup`'s transport and nothing else.
void ExpectServedBy(const TransportSetup& setup, const ClientStats& stats);
// Every node advertises `setup`'s transport.
void ExpectAdvertised(const TransportSetup& setup, const PoolState& pool);

// The transports this test binary runs the suite against: defined once per
// binary (conformance_test.cc on the host, the VM's in tests/rdma_vm).
std::vector<TransportSetup> TransportsUnderTest();

// "tcp", "shm", "rdma_rc", "rdma_uc": test name suffixes.
std::string TransportTestName(const ::testing::TestParamInfo<TransportSetup>& info);
void PrintTo(const TransportSetup& setup, std::ostream* out);

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTS_CONFORMANCE_TRANSPORTS_H_
