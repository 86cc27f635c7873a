// Rolling upgrades on the wire: a 0.1 client against the current directory,
// and the current client against a 0.1 server, from recordings of the 0.1
// programs (unipoolctl and unipool-directory at commit e15ce00, captured on
// loopback: recorded_handshakes.h says how).
#include <thread>

#include "gtest/gtest.h"
#include "recorded_handshakes.h"
#include "unipool/common/connection.h"
#include "unipool/common/protocol.h"
#include "unipool/platform/net.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/test_cluster.h"

namespace unipool {
namespace {

using testing::RawPeer;

template <size_t N>
std::vector<uint8_t> Bytes(const unsigned char (&recorded)[N]) {
  return std::vector<uint8_t>(recorded, recorded + N);
}

TEST(ProtocolVersionTest, VersionsAreMajorAndMinorAndOneMinorOlderIsServed) {
  static_assert(kProtocolVersion == 2, "0.2; update the recordings' expectations with it");
  EXPECT_TRUE(ServesProtocolVersion(2, 2));
  EXPECT_TRUE(ServesProtocolVersion(2, 1));
  EXPECT_FALSE(ServesProtocolVersion(2, 0));                   // two minors older
  EXPECT_FALSE(ServesProtocolVersion(2, 3));                   // newer: it falls back itself
  EXPECT_FALSE(ServesProtocolVersion(2, (1 << 16) | 2));       // another major
  EXPECT_FALSE(ServesProtocolVersion((1 << 16) | 0, 0xffff));  // 1.0 does not serve 0.65535
  EXPECT_EQ(FallbackProtocolVersion("protocol version 2 not supported: directory speaks version 1"),
            1u);
  EXPECT_FALSE(FallbackProtocolVersion("... speaks version 0").has_value());
  EXPECT_FALSE(FallbackProtocolVersion("... speaks version 2").has_value());
  EXPECT_FALSE(FallbackProtocolVersion("... speaks version 65537").has_value());
  EXPECT_FALSE(FallbackProtocolVersion("... speaks version x").has_value());
  EXPECT_FALSE(FallbackProtocolVersion("wrong key").has_value());
}

class ProtocolClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 0;
    auto cluster = testing::StartTestCluster("protocol", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  testing::TestCluster cluster_;
};

TEST_F(ProtocolClusterTest, ARecordedOldClientIsServedByTheCurrentDirectory) {
  RawPeer old_client(cluster_->directory_address());
  old_client.Send(Bytes(kV01ClientHello));
  auto reply = old_client.Receive();
  ASSERT_TRUE(reply.ok()) << reply.status();
  const wire::HelloReply* hello = reply->message()->body_as_HelloReply();
  ASSERT_NE(hello, nullptr) << "the directory refused a 0.1 Hello";
  EXPECT_EQ(hello->protocol_version(), kProtocolVersion);
  old_client.Send(Bytes(kV01ClientGetStatus));
  auto status = old_client.Receive();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_NE(status->message()->body_as_StatusReply(), nullptr);
}

TEST_F(ProtocolClusterTest, VersionsItDoesNotServeAreRefusedNamingItsOwn) {
  for (uint32_t version : {0u, 3u, (1u << 16) | 2u}) {
    RawPeer peer(cluster_->directory_address());
    peer.Hello(version);
    absl::Status refused = peer.ExpectError();
    EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << version << ": " << refused;
    EXPECT_NE(refused.message().find("speaks version 2"), absl::string_view::npos) << refused;
  }
}

// Plays a 0.1 server from recordings: the first connection gets the 0.1
// directory's refusal of a 0.2 Hello, the second its HelloReply.
class RecordedOldServer {
 public:
  RecordedOldServer() {
    auto fd = ListenTcp("127.0.0.1:0", &address_);
    EXPECT_TRUE(fd.ok()) << fd.status();
    listener_ = std::move(*fd);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordedOldServer() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& address() const { return address_; }
  // Waits for both connections; the versions their Hellos said.
  std::vector<uint32_t> VersionsHeard() {
    thread_.join();
    return versions_heard_;
  }

 private:
  void Serve() {
    for (const std::vector<uint8_t>& answer :
         {Bytes(kV01ServerRefusesV02), Bytes(kV01ServerHelloReply)}) {
      Fd conn = platform::Accept(listener_.get(), nullptr, nullptr);
      auto hello = ReadFrame(Stream{.fd = conn.get()}, FrameLimits{});
      if (!hello.ok() || hello->message()->body_as_Hello() == nullptr) return;
      versions_heard_.push_back(hello->message()->body_as_Hello()->protocol_version());
      ::send(conn.get(), answer.data(), answer.size(), platform::SendFlags());
      if (answer.size() == sizeof(kV01ServerHelloReply)) served_ = std::move(conn);
    }
  }
  std::string address_;
  std::vector<uint32_t> versions_heard_;
  Fd listener_;
  Fd served_;  // the accepted connection, kept open
  std::thread thread_;
};

TEST(ProtocolFallbackTest, TheCurrentClientSpeaksARecordedOldServersVersion) {
  RecordedOldServer old_server;
  ConnectionOptions options;
  options.credential = nullptr;
  options.tls = nullptr;
  auto conn = Connection::Open(old_server.address(), options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ((*conn)->protocol_version(), 1u);
  EXPECT_EQ(old_server.VersionsHeard(), (std::vector<uint32_t>{2, 1}));
}

}  // namespace
}  // namespace unipool
