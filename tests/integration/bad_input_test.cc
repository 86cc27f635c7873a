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
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

namespace unipool {
namespace {

std::vector<uint8_t> Header(uint32_t magic, uint32_t meta_bytes, uint64_t payload_bytes) {
  std::vector<uint8_t> h(kFrameHeaderBytes);
  for (int i = 0; i < 4; ++i) h[i] = static_cast<uint8_t>(magic >> (8 * i));
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<uint8_t>(meta_bytes >> (8 * i));
  for (int i = 0; i < 8; ++i) h[8 + i] = static_cast<uint8_t>(payload_bytes >> (8 * i));
  return h;
}

// A raw TCP connection that says whatever a test wants.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address) {
    auto fd = DialTcp(address, absl::Seconds(3), absl::Seconds(10));
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (fd.ok()) fd_ = std::move(*fd);
  }

  void Send(const std::vector<uint8_t>& bytes) {
    ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  void SendFrame(const flatbuffers::FlatBufferBuilder& fbb, uint64_t claimed_payload = 0,
                 const std::vector<uint8_t>& payload = {}) {
    auto header = Header(kFrameMagic, fbb.GetSize(), claimed_payload);
    Send(header);
    Send(std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()));
    if (!payload.empty()) Send(payload);
  }
  void Hello(uint32_t version = kProtocolVersion) {
    flatbuffers::FlatBufferBuilder fbb;
    FinishMessage(fbb, wire::CreateHello(fbb, version, wire::Role::Client));
    SendFrame(fbb);
  }
  // Reads one frame; payload discarded.
  absl::StatusOr<ReceivedFrame> Receive() {
    auto frame = ReadFrame(fd_.get(), FrameLimits{});
    if (frame.ok()) (void)DiscardBytes(fd_.get(), frame->payload_bytes);
    return frame;
  }
  // The status carried by an Error frame, or a failure.
  absl::Status ExpectError() {
    auto frame = Receive();
    if (!frame.ok()) return absl::InternalError("no reply: " + frame.status().ToString());
    const wire::Error* error = frame->message()->body_as_Error();
    if (error == nullptr) return absl::InternalError("reply is not an Error");
    return StatusFromWire(error->status());
  }
  // True when the server closed its end (EOF after any pending bytes).
  bool Closed() {
    char byte;
    for (;;) {
      ssize_t n = ::recv(fd_.get(), &byte, 1, 0);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }
  void HalfClose() { ::shutdown(fd_.get(), SHUT_WR); }

 private:
  Fd fd_;
};

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 64 << 20;
    auto cluster = testing::StartTestCluster("bad-input", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    auto client = testing::ConnectTo(*cluster_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    admin_ = std::make_unique<Admin>(*client_);
    // Something to lose: it must survive everything below.
    ASSERT_TRUE(client_->Put("precious", testing::PageBytes("precious", 100000)).ok());
  }
  void TearDown() override {
    // Both servers still answer a normal client, and nothing was lost.
    if (client_ != nullptr) {
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
    admin_.reset();
    client_.reset();
    cluster_.reset();
  }

  std::vector<std::string> Servers() const {
    return {cluster_->directory_address(), cluster_->node_address(0)};
  }

  testing::TestCluster cluster_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Admin> admin_;  // uses client_
};

TEST_F(BadInputTest, RandomBytesAreRefusedAndTheConnectionClosed) {
  std::mt19937_64 rng(42);
  for (const std::string& server : Servers()) {
    for (int round = 0; round < 20; ++round) {
      RawPeer peer(server);
      std::vector<uint8_t> junk(1 + rng() % 4096);
      for (auto& b : junk) b = static_cast<uint8_t>(rng());
      peer.Send(junk);
      peer.HalfClose();
      EXPECT_TRUE(peer.Closed()) << server;
    }
    RawPeer peer(server);
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
      RawPeer peer(server);
      peer.Send(Header(kFrameMagic, 0xffffffffu, 0));
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Zero-length meta.
      RawPeer peer(server);
      peer.Send(Header(kFrameMagic, 0, 0));
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Payload claimed larger than any frame may carry.
      RawPeer peer(server);
      peer.Hello();
      ASSERT_TRUE(peer.Receive().ok());
      flatbuffers::FlatBufferBuilder fbb;
      FinishMessage(fbb, wire::CreateGetStatus(fbb));
      peer.SendFrame(fbb, /*claimed_payload=*/1ull << 50);
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Meta that is not a valid FlatBuffer.
      RawPeer peer(server);
      peer.Send(Header(kFrameMagic, 64, 0));
      peer.Send(std::vector<uint8_t>(64, 0xAB));
      absl::Status s = peer.ExpectError();
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      EXPECT_TRUE(peer.Closed());
    }
    {  // Truncated: the header promises more than arrives before the peer goes.
      RawPeer peer(server);
      peer.Send(Header(kFrameMagic, 200, 0));
      peer.Send(std::vector<uint8_t>(10, 0));
      peer.HalfClose();
      EXPECT_TRUE(peer.Closed());
    }
    {  // Half a header.
      RawPeer peer(server);
      auto h = Header(kFrameMagic, 100, 0);
      peer.Send(std::vector<uint8_t>(h.begin(), h.begin() + 7));
      peer.HalfClose();
      EXPECT_TRUE(peer.Closed());
    }
  }
}

TEST_F(BadInputTest, HandshakeIsEnforced) {
  for (const std::string& server : Servers()) {
    {  // Wrong protocol version.
      RawPeer peer(server);
      peer.Hello(kProtocolVersion + 41);
      absl::Status s = peer.ExpectError();
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
      EXPECT_NE(s.message().find("protocol version"), std::string::npos) << s;
      EXPECT_TRUE(peer.Closed());
    }
    {  // A request before Hello.
      RawPeer peer(server);
      flatbuffers::FlatBufferBuilder fbb;
      FinishMessage(fbb, wire::CreateGetStatus(fbb));
      peer.SendFrame(fbb);
      EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_TRUE(peer.Closed());
    }
    {  // Hello twice.
      RawPeer peer(server);
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
    RawPeer peer(cluster_->directory_address());
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
    RawPeer peer(cluster_->node_address(0));
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
    RawPeer peer(cluster_->directory_address());
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
    RawPeer peer(cluster_->directory_address());
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::PutCommitItem>> items = {
        wire::CreatePutCommitItem(fbb, 987654, 1), wire::CreatePutCommitItem(fbb, 987654, 1)};
    FinishMessage(fbb, wire::CreatePutCommit(fbb, fbb.CreateVector(items)));
    peer.SendFrame(fbb);
    auto reply = peer.Receive();
    ASSERT_TRUE(reply.ok());
    const wire::StatusList* list = reply->message()->body_as_StatusList();
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(list->items()->size(), 2u);
    EXPECT_EQ(StatusFromWire(list->items()->Get(0)).code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(StatusFromWire(list->items()->Get(1)).code(), absl::StatusCode::kNotFound);
  }
}

TEST_F(BadInputTest, NodeRefusesOutOfRangeAndMismatchedAccess) {
  const std::string node = cluster_->node_address(0);
  auto send_ranges = [&](RawPeer& peer, bool write, std::vector<wire::Range> ranges,
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
    RawPeer peer(node);
    send_ranges(peer, false, {wire::Range(64ull << 20, 4096)}, 0, {});
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kOutOfRange);
  }
  {  // Offset + length overflowing 64 bits.
    RawPeer peer(node);
    send_ranges(peer, false, {wire::Range(~0ull - 10, 4096)}, 0, {});
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kOutOfRange);
  }
  {  // Write whose payload is shorter than its ranges.
    RawPeer peer(node);
    send_ranges(peer, true, {wire::Range(0, 4096)}, 100, std::vector<uint8_t>(100, 7));
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
  {  // Write that stops halfway through its payload.
    RawPeer peer(node);
    send_ranges(peer, true, {wire::Range(1 << 20, 8192)}, 8192, std::vector<uint8_t>(1000, 7));
    peer.HalfClose();
    EXPECT_TRUE(peer.Closed());
  }
  {  // No ranges at all.
    RawPeer peer(node);
    send_ranges(peer, false, {}, 0, {});
    EXPECT_EQ(peer.ExpectError().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(BadInputTest, ManyConnectionsAbandonedMidRequest) {
  // Peers that connect, start a request and vanish must not leak threads or
  // block others: afterwards the servers serve normally (checked in TearDown).
  for (int i = 0; i < 50; ++i) {
    for (const std::string& server : Servers()) {
      RawPeer peer(server);
      peer.Hello();
      peer.Send(Header(kFrameMagic, 500, 0));
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
