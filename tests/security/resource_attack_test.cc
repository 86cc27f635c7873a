// Attacks on the servers' resources, by real processes on loopback: idle and
// half-sent connections by the thousand, connection floods from one address,
// headers that claim huge frames, peers that never finish a handshake or a
// frame. Each must fail (refused, closed, or cheap) while a normal client on
// another address keeps putting and getting.
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/client.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

// Resident memory of a process, in bytes (VmRSS in /proc/PID/status).
uint64_t ResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrFormat("/proc/%d/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Waits (bounded) until every peer in `peers` was closed by the server.
bool AllClosedWithin(std::vector<std::unique_ptr<testing::RawPeer>>& peers, absl::Duration bound) {
  return testing::WaitUntil(
      [&] {
        bool all = true;
        for (auto& peer : peers) all = all && peer->ClosedByServer();
        return all;
      },
      bound, absl::Milliseconds(50));
}

class ResourceAttackTest : public ::testing::Test {
 protected:
  // `server_flags` go to the directory and every node.
  void StartCluster(std::vector<std::string> server_flags = {}) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;  // the attacker side needs thousands of sockets too
    setrlimit(RLIMIT_NOFILE, &rl);
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 64 << 20;
    options.work_dir = (std::filesystem::temp_directory_path() /
                        absl::StrFormat("unipool-resource-attack-%d", getpid()))
                           .string();
    options.directory_flags = server_flags;
    options.node_flags = server_flags;
    options.node_flags.push_back("--shm=off");  // the client's bytes cross the node's server
    std::filesystem::remove_all(options.work_dir);
    auto cluster = LocalCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ClientOptions client_options;
    client_options.directory = cluster_->directory_address();
    auto client = Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void TearDown() override {
    client_.reset();
    std::string dir = cluster_ ? cluster_->work_dir() : "";
    cluster_.reset();
    if (!HasFailure() && !dir.empty()) std::filesystem::remove_all(dir);
  }

  // Puts and gets `count` pages through the client on 127.0.0.1.
  void ExpectClientWorks(const std::string& tag, int count) {
    for (int i = 0; i < count; ++i) {
      std::string key = absl::StrFormat("%s-%d", tag, i);
      ASSERT_TRUE(client_->Put(key, testing::PageBytes(key, 65536)).ok()) << key;
    }
    for (int i = 0; i < count; ++i) {
      std::string key = absl::StrFormat("%s-%d", tag, i);
      auto got = client_->Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status();
      EXPECT_EQ(*got, testing::PageBytes(key, 65536)) << key;
    }
  }

  std::vector<std::string> Servers() const {
    return {cluster_->directory_address(), cluster_->node_address(0)};
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(ResourceAttackTest, ThousandsOfIdleConnectionsDoNotLockClientsOut) {
  StartCluster();
  // 2,000 idle connections to each server from two other addresses: a
  // thousand after a Hello (answered) and half a frame (500 per address,
  // under the per-identity cap), then a thousand in their handshake (the
  // budget for those is 1,024), half of them silent and half stopped
  // halfway through a header.
  std::vector<std::unique_ptr<testing::RawPeer>> idle;
  for (const std::string& server : Servers()) {
    for (int i = 0; i < 2000; ++i) {
      auto peer = std::make_unique<testing::RawPeer>(server, i % 2 ? "127.0.0.2" : "127.0.0.3");
      ASSERT_TRUE(peer->connected()) << "connection " << i << " to " << server;
      if (i < 1000) {
        peer->Hello();
        ASSERT_TRUE(peer->Receive().ok()) << "connection " << i << " to " << server;
        peer->Send(testing::Header(kFrameMagic, 500, 0));
      } else if (i % 2 == 1) {
        peer->Send(std::vector<uint8_t>(7, 0x55));
      }
      idle.push_back(std::move(peer));
    }
  }
  ExpectClientWorks("while-idle", 20);
  // The idle ones were held, not refused.
  int closed = 0;
  for (auto& peer : idle) closed += peer->ClosedByServer() ? 1 : 0;
  EXPECT_EQ(closed, 0);
}

// A peer that pipelines requests the servers answer on their event loop
// (lookups, small reads) and never reads a reply: each server stops reading
// from it once its replies back up, and goes on serving everyone else.
TEST_F(ResourceAttackTest, APeerThatReadsNoReplyStallsOnlyItself) {
  StartCluster();
  ASSERT_TRUE(client_->Put("flooded", testing::PageBytes("flooded", 4096)).ok());
  std::vector<std::unique_ptr<testing::RawPeer>> greedy;
  for (const std::string& server : Servers()) {
    greedy.push_back(std::make_unique<testing::RawPeer>(server));
    testing::RawPeer& peer = *greedy.back();
    peer.Hello();
    ASSERT_TRUE(peer.Receive().ok());  // HelloReply
    flatbuffers::FlatBufferBuilder fbb;
    if (server == cluster_->directory_address()) {
      std::vector<std::string_view> keys = {"flooded"};
      FinishMessage(fbb, wire::CreateLookup(fbb, BuildKeyList(fbb, keys)));
    } else {
      std::vector<wire::Range> ranges = {wire::Range(0, 64 << 10)};
      FinishMessage(fbb, wire::CreateRead(fbb, fbb.CreateVectorOfStructs(ranges)));
    }
    size_t sent = peer.Flood(fbb, 256 << 20);
    EXPECT_LT(sent, 256u << 20) << server << " kept reading requests whose replies nobody read";
  }
  ExpectClientWorks("while-flooded", 20);
  for (auto& peer : greedy) EXPECT_FALSE(peer->ClosedByServer());
}

// Sockets that never finish their handshake share one budget: past it the
// oldest of them is closed for each new one, so the newest (a client's) is
// always served.
TEST_F(ResourceAttackTest, AHandshakeFloodClosesItsOwnOldestSockets) {
  StartCluster({"--max-unauthenticated-connections=50"});
  for (const std::string& server : Servers()) {
    std::vector<std::unique_ptr<testing::RawPeer>> flood;
    for (int i = 0; i < 80; ++i) {
      flood.push_back(std::make_unique<testing::RawPeer>(server, "127.0.0.4"));
      ASSERT_TRUE(flood.back()->connected());
    }
    // The first 30 were closed by the server for the last 30.
    std::vector<std::unique_ptr<testing::RawPeer>> oldest;
    for (int i = 0; i < 30; ++i) oldest.push_back(std::move(flood[i]));
    EXPECT_TRUE(AllClosedWithin(oldest, absl::Seconds(20))) << server;
    for (int i = 30; i < 80; ++i) EXPECT_FALSE(flood[i]->ClosedByServer()) << server << " " << i;
  }
  ExpectClientWorks("during-flood", 5);
}

TEST_F(ResourceAttackTest, SilentPeersAreClosedByTheirTimeouts) {
  StartCluster({"--handshake-timeout=1s", "--idle-timeout=2s", "--frame-timeout=1s"});
  for (const std::string& server : Servers()) {
    std::vector<std::unique_ptr<testing::RawPeer>> silent;
    silent.push_back(std::make_unique<testing::RawPeer>(server));  // never says Hello
    silent.push_back(std::make_unique<testing::RawPeer>(server));  // half a Hello header
    silent.back()->Send(std::vector<uint8_t>(5, 0x55));
    silent.push_back(std::make_unique<testing::RawPeer>(server));  // Hello, then half a frame
    silent.back()->Hello();
    ASSERT_TRUE(silent.back()->Receive().ok());
    silent.back()->Send(testing::Header(kFrameMagic, 300, 0));
    silent.push_back(std::make_unique<testing::RawPeer>(server));  // Hello, then nothing
    silent.back()->Hello();
    ASSERT_TRUE(silent.back()->Receive().ok());
    EXPECT_TRUE(AllClosedWithin(silent, absl::Seconds(30))) << server;
  }
  // The client's pooled connections may have been closed as idle too: it
  // redials (or reports Unavailable once); the cluster itself still serves.
  client_.reset();
  ClientOptions client_options;
  client_options.directory = cluster_->directory_address();
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  client_ = std::move(*client);
  ExpectClientWorks("after-timeouts", 5);
}

TEST_F(ResourceAttackTest, HugeFrameClaimsCostOnlyTheBytesSent) {
  StartCluster();
  // Before the handshake: refused outright, whatever the claim.
  for (const std::string& server : Servers()) {
    testing::RawPeer peer(server);
    peer.Send(testing::Header(kFrameMagic, 64u << 20, 0));
    absl::Status s = peer.ExpectError();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("meta of 67108864 bytes"), std::string::npos) << s;
  }
  // After it: 80 connections per server claim 64 MiB metas and send 100
  // bytes. Memory follows the bytes, not the claims (5 GiB if it did not).
  const pid_t pids[] = {cluster_->directory_pid(), cluster_->node_pid(0)};
  std::vector<std::unique_ptr<testing::RawPeer>> liars;
  for (int s = 0; s < 2; ++s) {
    uint64_t before = ResidentBytes(pids[s]);
    for (int i = 0; i < 80; ++i) {
      auto peer = std::make_unique<testing::RawPeer>(Servers()[s]);
      peer->Hello();
      ASSERT_TRUE(peer->Receive().ok());
      peer->Send(testing::Header(kFrameMagic, 64u << 20, 0));
      peer->Send(std::vector<uint8_t>(100, 0x11));
      liars.push_back(std::move(peer));
    }
    ExpectClientWorks(absl::StrFormat("liars-%d", s), 5);
    uint64_t after = ResidentBytes(pids[s]);
    EXPECT_LT(after, before + (64ull << 20))
        << Servers()[s] << ": RSS " << before << " -> " << after;
  }
}

}  // namespace
}  // namespace unipool
