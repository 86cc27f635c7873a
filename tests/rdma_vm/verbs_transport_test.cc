// The verbs transport for real, on Soft-RoCE inside the test VM (run through
// tests/rdma_vm/vm-run, which sets UNIPOOL_RDMA_DEVICE): a directory and three
// nodes with their slabs registered on rxe0, clients in RC mode and in forced
// UC mode (what Apple's Thunderbolt RDMA offers). This binary runs the
// data-path conformance suite (tests/conformance) over both, UC with losses
// injected on both directions by a test-only verbs library
// (faulty_verbs.cc), and the cases only RDMA has: registered buffers, and a
// link that goes down and comes back.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transport_test.h"
#include "transports.h"
#include "unipool/client.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {

// Both modes load the damaging library (each process loads its verbs library
// once); only UC asks it to damage: every 29th UC write, on the client
// (puts) and on the nodes (the writes that serve UC gets). Retries must hide
// it.
std::vector<TransportSetup> TransportsUnderTest() {
  TransportSetup rc = RdmaTransport("rc");
  rc.environment = {{"UNIPOOL_VERBS_LIBRARY", UNIPOOL_FAULTY_VERBS}};
  TransportSetup uc = RdmaTransport("uc");
  uc.environment = {{"UNIPOOL_VERBS_LIBRARY", UNIPOOL_FAULTY_VERBS},
                    {"UNIPOOL_FAULTY_VERBS_DAMAGE_EVERY", "29"}};
  uc.lossy = true;
  return {rc, uc};
}

namespace {

class VerbsTest : public TransportTest {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("UNIPOOL_RDMA_DEVICE"), nullptr)
        << "no RDMA device named: run this test inside tests/rdma_vm/vm-run (ctest does)";
    ASSERT_NO_FATAL_FAILURE(StartTransportCluster());
  }
};

TEST_P(VerbsTest, RegisteredBuffersMoveWithoutStaging) {
  // One registered arena: puts from it and gets into it are zero-copy.
  std::vector<uint8_t> arena(16 << 20);
  ASSERT_TRUE(client_->RegisterBuffer(arena.data(), arena.size()).ok());
  EXPECT_EQ(client_->RegisterBuffer(arena.data() + 4096, 4096).code(),
            absl::StatusCode::kAlreadyExists);
  std::vector<std::string> keys;
  std::vector<std::span<const uint8_t>> values;
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    keys.push_back(absl::StrFormat("registered/%d", i));
    auto bytes = PageBytes(keys.back(), 512 << 10);
    std::copy(bytes.begin(), bytes.end(), arena.begin() + at);
    values.emplace_back(arena.data() + at, bytes.size());
    at += bytes.size();
  }
  std::vector<std::string_view> k(keys.begin(), keys.end());
  for (const auto& s : client_->BatchPut(k, values)) ASSERT_TRUE(s.ok()) << s;
  std::fill(arena.begin(), arena.end(), 0);
  std::vector<std::span<uint8_t>> into;
  for (int i = 0; i < 16; ++i) into.emplace_back(arena.data() + i * (512 << 10), 512 << 10);
  auto got = client_->BatchGet(k, into);
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_TRUE(std::equal(into[i].begin(), into[i].end(), PageBytes(keys[i], 512 << 10).begin()))
        << keys[i];
  }
  EXPECT_TRUE(client_->UnregisterBuffer(arena.data()).ok());
  EXPECT_EQ(client_->UnregisterBuffer(arena.data()).code(), absl::StatusCode::kNotFound);
}

// Operators see the fabric: every node registered its RDMA port, and the
// client's report of its paths (one per node here, all on rxe0) reaches the
// directory with the bytes they carried.
TEST_P(VerbsTest, TheDirectoryShowsNodePortsAndClientPaths) {
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) {
    keys.push_back(absl::StrFormat("fabric/%d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), 64 << 10)).ok());
  }
  bool reported = WaitUntil([&] {
    for (const std::string& key : keys) EXPECT_TRUE(client_->Get(key).ok()) << key;
    auto state = admin_->State();
    if (!state.ok() || state->fabric.empty()) return false;
    uint64_t bytes = 0;
    for (const ClientFabric& c : state->fabric) {
      for (const RdmaPathStats& p : c.paths) bytes += p.up ? p.bytes : 0;
    }
    return bytes > 0;
  });
  EXPECT_TRUE(reported) << "no fabric report with bytes reached the directory";
  auto state = admin_->State();
  ASSERT_TRUE(state.ok()) << state.status();
  for (const NodeState& n : state->nodes) {
    ASSERT_EQ(n.rdma_ports.size(), 1u) << n.name;
    EXPECT_EQ(n.rdma_ports[0].device, "rxe0");
    EXPECT_TRUE(n.rdma_ports[0].active);
  }
  ClientStats stats = client_->stats();
  // One port here and one on each node: one path per node contacted.
  std::set<std::string> nodes;
  for (const RdmaPathStats& p : stats.rdma_paths) nodes.insert(p.node_address);
  EXPECT_FALSE(stats.rdma_paths.empty());
  EXPECT_EQ(nodes.size(), stats.rdma_paths.size());
  for (const RdmaPathStats& p : stats.rdma_paths) {
    EXPECT_EQ(p.local_port, "rxe0:1");
    EXPECT_EQ(p.remote_port, "rxe0:1");
  }
  EXPECT_TRUE(stats.tcp_fallbacks.empty());
}

// Pulling the cable: the VM's rxe0 runs on the veth "va"; taking it down
// makes the port leave ACTIVE. That is a path lost, not a node: the nodes
// stay up (TCP still reaches them), every get and put goes on over TCP with
// the right bytes, and once the link is back the path is probed and RDMA
// carries the pages again.
TEST_P(VerbsTest, PulledCableMovesTrafficToTcpAndBack) {
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) {
    keys.push_back(absl::StrFormat("link/%d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), 64 << 10)).ok());
  }
  ClientStats before = client_->stats();
  ASSERT_EQ(std::system("ip link set va down"), 0);
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<uint8_t>> got = client_->Get(key);
    EXPECT_TRUE(got.ok()) << key << ": " << got.status();
    if (got.ok()) {
      EXPECT_EQ(*got, PageBytes(key, 64 << 10)) << key;
    }
  }
  for (int i = 0; i < 4; ++i) {
    std::string key = absl::StrFormat("link/down/%d", i);
    EXPECT_TRUE(client_->Put(key, PageBytes(key, 64 << 10)).ok()) << key;
  }
  ClientStats down = client_->stats();
  std::system("ip link set va up");
  EXPECT_GT(down.tcp_requests, before.tcp_requests) << "nothing moved to TCP";
  ASSERT_FALSE(down.rdma_paths.empty());
  EXPECT_TRUE(std::any_of(down.rdma_paths.begin(), down.rdma_paths.end(),
                          [](const RdmaPathStats& p) { return !p.up && p.errors > 0; }))
      << "no path was taken out of use";
  // No node was marked down for a lost path.
  auto status = admin_->State();
  ASSERT_TRUE(status.ok()) << status.status();
  for (const NodeState& n : status->nodes) EXPECT_TRUE(n.up) << n.name;

  // Back: the paths are probed again (after their backoff) and carry pages.
  bool back = WaitUntil([&] {
    for (const std::string& key : keys) {
      absl::StatusOr<std::vector<uint8_t>> got = client_->Get(key);
      if (!got.ok() || *got != PageBytes(key, 64 << 10)) return false;
    }
    ClientStats now = client_->stats();
    return std::all_of(now.rdma_paths.begin(), now.rdma_paths.end(),
                       [](const RdmaPathStats& p) { return p.up; }) &&
           now.rdma_requests > down.rdma_requests;
  });
  EXPECT_TRUE(back) << "RDMA did not come back after the link did";
}

// A node SIGKILLed with transfers in flight: the client is not held longer
// than its transfer timeout (the dead peer's closed connection ends the wait
// at once), and every get either returns the right bytes from another copy
// or fails cleanly, never with wrong bytes.
TEST_P(VerbsTest, NodeKilledMidTransferReleasesTheClient) {
  std::vector<std::string> keys;
  std::vector<std::span<const uint8_t>> values;
  std::vector<std::vector<uint8_t>> pages;
  for (int i = 0; i < 24; ++i) {
    keys.push_back(absl::StrFormat("kill/%d", i));
    pages.push_back(PageBytes(keys.back(), 256 << 10));
  }
  for (const auto& p : pages) values.emplace_back(p);
  std::vector<std::string_view> k(keys.begin(), keys.end());
  for (const auto& s : client_->BatchPut(k, values)) ASSERT_TRUE(s.ok()) << s;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  absl::Duration longest;
  std::thread reader([&] {
    std::vector<std::vector<uint8_t>> into(keys.size(), std::vector<uint8_t>(256 << 10));
    std::vector<std::span<uint8_t>> spans(into.begin(), into.end());
    while (!stop.load()) {
      absl::Time start = absl::Now();
      auto got = client_->BatchGet(k, spans);
      longest = std::max(longest, absl::Now() - start);
      for (size_t i = 0; i < got.size(); ++i) {
        if (got[i].ok() && into[i] != pages[i]) wrong.fetch_add(1);
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(300));  // let transfers be in flight
  ASSERT_TRUE(cluster_->KillNode(1).ok());
  ASSERT_TRUE(cluster_->WaitForNodeDown(1, absl::Seconds(60)).ok());
  stop.store(true);
  reader.join();
  EXPECT_EQ(wrong.load(), 0);
  std::printf("longest batch get across the kill: %s\n", absl::FormatDuration(longest).c_str());
  EXPECT_LT(longest, absl::Seconds(31)) << "a dead node held the client past its timeout";
}

INSTANTIATE_TEST_SUITE_P(Modes, VerbsTest, ::testing::ValuesIn(TransportsUnderTest()),
                         TransportTestName);

}  // namespace
}  // namespace unipool::testing
