// Hostile and broken peers: random bytes, wrong lengths, truncated and
// oversized frames, wrong protocol versions, requests a server does not
// serve, out-of-range slab access. Each gets an error and a closed
// connection; the directory and the node keep serving everyone else and
// lose nothing.
#include <sys/socket.h>

#include <random>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/frame.h"
#include "unipool/common/protocol.h"
#include "unipool/common/socket.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/test_pages.h"

namespace unipool {
namespace {

class BadInputTest : public testing::ClusterTest {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 64 << 20;
    ASSERT_NO_FATAL_FAILURE(StartCluster("bad-input", options));
    ASSERT_NO_FATAL_FAILURE(ConnectClient());
    // Something to lose: it must survive everything below.
    ASSERT_TRUE(client_->Put("precious", testing::PageBytes("precious", 100000)).ok());
  }
  void TearDown() override {
    if (client_ != nullptr) ExpectServersStillServe();
    ClusterTest::TearDown();
  }

  // Both servers still answer a normal client, and nothing was lost.
  void ExpectServersStillServe() {
    auto got = client_->Get("precious");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, testing::PageBytes("precious", 100000));
    std::string key = absl::StrFormat(
        "after-%s", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(client_->Put(key, testing::PageBytes(key, 8192)).ok());
    EXPECT_EQ(*client_->Get(key), testing::PageBytes(key, 8192));
    auto status = admin_->State();
    ASSERT_TRUE(status.ok());
    ASSERT_EQ(status->nodes.size(), 1u);
    EXPECT_TRUE(status->nodes[0].up);
  }

  std::vector<std::string> Servers() const {
    return {cluster_->directory_address(), cluster_->node_address(0)};
  }
};

TEST_F(BadInputTest, RandomBytesAreRefusedAndTheConnectionClosed) {
  std::mt19937_64 rng(42);
  for (const std::string& server : Servers()) {
    for (int round = 0; round < 20; ++round) {
      testing::RawPeer peer(server);
      std::vector<uint8_t> junk(1 + rng() % 4096);
      for (auto& b : junk) b = static_cast<uint8_t>(rng());
      peer.Send(junk);
      peer.HalfClose();
      EXPECT_TRUE(peer.Closed()) << server;
    }
    testing::RawPeer peer(server);
    peer.Send({'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n',
               '\r', '\n'});
    absl::Status s = peer.ExpectError();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("magic"), std::string::npos) << s;
    EXPECT_TRUE(peer.Closed());
  }
}

TEST_F(BadInputTest, WrongLengthsAndTruncatedFrames) {
  for (const std::string& server : Servers()) {
    {  // Meta longer than the limit.
      testing::RawPeer peer(server);
      peer.Send(testing::Header(kFrameMagic, 0xffffffffu, 0));
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Zero-length meta.
      testing::RawPeer peer(server);
      peer.Send(testing::Header(kFrameMagic, 0, 0));
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Payload claimed larger than any frame may carry.
      testing::RawPeer peer(server);
      peer.Hello();
      ASSERT_TRUE(peer.Receive().ok());
      flatbuffers::FlatBufferBuilder fbb;
      FinishMessage(fbb, wire::CreateGetStatus(fbb));
      peer.SendFrame(fbb, /*claimed_payload=*/1ull << 50);
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Meta that is not a valid FlatBuffer.
      testing::RawPeer peer(server);
      peer.Send(testing::Header(kFrameMagic, 64, 0));
      peer.Send(std::vector<uint8_t>(64, 0xAB));
      absl::Status s = peer.ExpectError();
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      EXPECT_TRUE(peer.Closed());
    }
    {  // Truncated: the header promises more than arrives before the peer goes.
      testing::RawPeer peer(server);
      peer.Send(testing::Header(kFrameMagic, 200, 0));
      peer.Send(std::vector<uint8_t>(10, 0));
      peer.HalfClose();
      EXPECT_TRUE(peer.Closed());
    }
    {  // Half a header.
      testing::RawPeer peer(server);
      auto h = testing::Header(kFrameMagic, 100, 0);
      peer.Send(std::vector<uint8_t>(h.begin(), h.begin() + 7));
      peer.HalfClose();
      EXPECT_TRUE(peer.Closed());
    }
  }
}

TEST_F(BadInputTest, HandshakeIsEnforced) {
  for (const std::string& server : Servers()) {
    {  // Wrong protocol version.
      testing::RawPeer peer(server);
      peer.Hello(kProtocolVersion + 41);
      absl::Status s = peer.ExpectError();
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
      EXPECT_NE(s.message().find("protocol version"), std::string::npos) << s;
      EXPECT_TRUE(peer.Closed());
    }
    {  // A request before Hello.
      testing::RawPeer peer(server);
      flatbuffers::FlatBufferBuilder fbb;
      FinishMessage(fbb, wire::CreateGetStatus(fbb));
      peer.SendFrame(fbb);
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Hello twice.
      testing::RawPeer peer(server);
      peer.Hello();
      ASSERT_TRUE(peer.Receive().ok());
      peer.Hello();
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_TRUE(peer.Closed());
    }
  }
}

TEST_F(BadInputTest, RequestsAServerDoesNotServe) {
  {  // A data-path Read sent to the directory.
    testing::RawPeer peer(cluster_->directory_address());
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<wire::Range> ranges = {wire::Range(0, 16)};
    auto vec = fbb.CreateVectorOfStructs(ranges);
    FinishMessage(fbb, wire::CreateRead(fbb, vec));
    peer.SendFrame(fbb);
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // A Lookup sent to a node.
    testing::RawPeer peer(cluster_->node_address(0));
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<std::string_view> keys = {"precious"};
    auto list = BuildKeyList(fbb, keys);
    FinishMessage(fbb, wire::CreateLookup(fbb, list));
    peer.SendFrame(fbb);
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // A key list whose lengths do not add up.
    testing::RawPeer peer(cluster_->directory_address());
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<uint8_t> bytes = {'a', 'b'};
    std::vector<uint32_t> lengths = {1, 5};
    auto list = wire::CreateKeyList(fbb, fbb.CreateVector(bytes), fbb.CreateVector(lengths));
    FinishMessage(fbb, wire::CreateLookup(fbb, list));
    peer.SendFrame(fbb);
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // PutCommit of ids nobody reserved, twice the same: per-item NotFound.
    testing::RawPeer peer(cluster_->directory_address());
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::PutCommitItem>> items = {
        wire::CreatePutCommitItem(fbb, 987654, 1), wire::CreatePutCommitItem(fbb, 987654, 1)};
    FinishMessage(fbb, wire::CreatePutCommit(fbb, fbb.CreateVector(items)));
    peer.SendFrame(fbb);
    auto reply = peer.Receive();
    ASSERT_TRUE(reply.ok());
    const wire::PutCommitReply* list = reply->message()->body_as_PutCommitReply();
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(list->items()->size(), 2u);
    EXPECT_EQ(StatusFromWire(list->items()->Get(0)).code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(StatusFromWire(list->items()->Get(1)).code(), absl::StatusCode::kNotFound);
  }
}

TEST_F(BadInputTest, NodeRefusesOutOfRangeAndMismatchedAccess) {
  const std::string node = cluster_->node_address(0);
  auto send_ranges = [&](testing::RawPeer& peer, bool write, std::vector<wire::Range> ranges,
                         uint64_t claimed_payload, const std::vector<uint8_t>& payload) {
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());
    flatbuffers::FlatBufferBuilder fbb;
    auto vec = fbb.CreateVectorOfStructs(ranges);
    if (write) {
      FinishMessage(fbb, wire::CreateWrite(fbb, vec));
    } else {
      FinishMessage(fbb, wire::CreateRead(fbb, vec));
    }
    peer.SendFrame(fbb, claimed_payload, payload);
  };
  {  // Read past the end of the slab.
    testing::RawPeer peer(node);
    send_ranges(peer, false, {wire::Range(64ull << 20, 4096)}, 0, {});
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kOutOfRange);
  }
  {  // Offset + length overflowing 64 bits.
    testing::RawPeer peer(node);
    send_ranges(peer, false, {wire::Range(~0ull - 10, 4096)}, 0, {});
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kOutOfRange);
  }
  {  // Write whose payload is shorter than its ranges.
    testing::RawPeer peer(node);
    send_ranges(peer, true, {wire::Range(0, 4096)}, 100, std::vector<uint8_t>(100, 7));
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // Write that stops halfway through its payload.
    testing::RawPeer peer(node);
    send_ranges(peer, true, {wire::Range(1 << 20, 8192)}, 8192, std::vector<uint8_t>(1000, 7));
    peer.HalfClose();
    EXPECT_TRUE(peer.Closed());
  }
  {  // No ranges at all.
    testing::RawPeer peer(node);
    send_ranges(peer, false, {}, 0, {});
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(BadInputTest, ManyConnectionsAbandonedMidRequest) {
  // Peers that connect, start a request and vanish must not leak threads or
  // block others: afterwards the servers serve normally (checked in TearDown).
  for (int i = 0; i < 50; ++i) {
    for (const std::string& server : Servers()) {
      testing::RawPeer peer(server);
      peer.Hello();
      peer.Send(testing::Header(kFrameMagic, 500, 0));
    }
  }
}

TEST(ClientConnectTest, UnreachableDirectoryIsUnavailable) {
  ClientOptions options;
  options.directory = "127.0.0.1:1";  // nothing listens on port 1
  auto client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace unipool
