// The verbs transport for real, on Soft-RoCE inside the test VM (run through
// tests/rdma_vm/vm-run, which sets UNIPOOL_RDMA_DEVICE): a directory and three
// nodes with their slabs registered on rxe0, clients in RC mode and in forced
// UC mode (what Apple's Thunderbolt RDMA offers). This binary runs the
// data-path conformance suite (tests/conformance) over both, UC with losses
// injected on both directions by a test-only verbs library
// (faulty_verbs.cc), and the cases only RDMA has: registered buffers, and a
// link that goes down and comes back.
#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transport_test.h"
#include "transports.h"
#include "unipool/client.h"
#include "unipool/testing/test_pages.h"

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

// Pulling the cable: the VM's rxe0 runs on the veth "va"; taking it down
// makes the port leave ACTIVE, the nodes say so in their next heartbeat and
// the directory marks them down (within a beat, not the heartbeat timeout).
// Reads then fail clearly; with the link back, the same pages read back right.
TEST_P(VerbsTest, RdmaLinkDropMarksNodesDownAndBack) {
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) {
    keys.push_back(absl::StrFormat("link/%d", i));
    ASSERT_TRUE(client_->Put(keys.back(), PageBytes(keys.back(), 64 << 10)).ok());
  }
  ASSERT_EQ(std::system("ip link set va down"), 0);
  absl::Status down = cluster_->WaitForNodeDown(0, absl::Seconds(8));  // node timeout is 10 s
  std::system("ip link set va up");
  ASSERT_TRUE(down.ok()) << down
                         << " (an RDMA link drop must be seen before the heartbeat timeout)";
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, absl::Seconds(60)).ok());
  // Back: every page reads right (a channel broken by the drop is replaced).
  for (const std::string& key : keys) {
    absl::StatusOr<std::vector<uint8_t>> got;
    for (int attempt = 0; attempt < 20; ++attempt) {
      got = client_->Get(key);
      if (got.ok()) break;
      EXPECT_NE(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
      absl::SleepFor(absl::Milliseconds(500));
    }
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    EXPECT_EQ(*got, PageBytes(key, 64 << 10)) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, VerbsTest, ::testing::ValuesIn(TransportsUnderTest()),
                         TransportTestName);

}  // namespace
}  // namespace unipool::testing
