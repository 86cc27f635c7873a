// Connection and memory caps attacked by real processes on loopback, from
// the victim's own address: a tenant's flood of authenticated idle
// connections, a flood of sockets that never finish their handshake, huge
// metas sent in full by a tenant, and a node's caps full when the
// directory probes it. The flooder loses its own connections; the victim
// and the pool's own links are served at once.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/connection.h"
#include "unipool/common/protocol.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

// True when the server closed `fd` (checked without waiting; what it said
// before, an Error frame saying why, is read and dropped).
bool ClosedByServer(int fd) {
  char bytes[4096];
  for (;;) {
    ssize_t n = ::recv(fd, bytes, sizeof bytes, MSG_DONTWAIT);
    if (n > 0) continue;
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

class LimitsAttackTest : public ::testing::Test {
 protected:
  // `server_flags` go to the directory and the node.
  void StartCluster(std::vector<std::string> server_flags) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;  // the attacker side holds hundreds of sockets
    setrlimit(RLIMIT_NOFILE, &rl);
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 64 << 20;
    options.directory_flags = server_flags;
    options.node_flags = server_flags;
    options.node_flags.push_back("--shm=off");  // the victim's bytes cross the node's server
    auto cluster = testing::StartTestCluster("limits", options, testing::TestAuth::kClusterKey);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    auto key = LoadCredentialFile(cluster_->key_file());
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
  }

  std::shared_ptr<const Credential> Token(const std::string& prefix) {
    auto token = NewToken(key_, wire::Role::Client, prefix);
    EXPECT_TRUE(token.ok());
    return std::make_shared<Credential>(*token);
  }
  std::vector<std::string> Servers() const {
    return {cluster_->directory_address(), cluster_->node_address(0)};
  }

  // A victim tenant connects afresh and puts and gets `count` pages, within
  // `bound` in all.
  void ExpectVictimServed(const std::string& tag, int count, absl::Duration bound) {
    absl::Time start = absl::Now();
    std::string path = cluster_->work_dir() + "/victim-" + tag + ".token";
    std::filesystem::remove(path);
    ASSERT_TRUE(WriteCredentialFile(path, *Token("victim/")).ok());
    ClientOptions options;
    options.key_file = path;
    options.shm = false;
    auto client = testing::ConnectTo(*cluster_, options);
    ASSERT_TRUE(client.ok()) << client.status();
    for (int i = 0; i < count; ++i) {
      std::string key = absl::StrFormat("victim/%s-%d", tag, i);
      ASSERT_TRUE((*client)->Put(key, testing::PageBytes(key, 65536)).ok()) << key;
      auto got = (*client)->Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status();
      EXPECT_EQ(*got, testing::PageBytes(key, 65536)) << key;
    }
    EXPECT_LT(absl::Now() - start, bound) << "the victim waited";
  }

  Credential key_;
  testing::TestCluster cluster_;
};

TEST_F(LimitsAttackTest, AnIdleFloodOfOneTokenClosesOnlyItsOwnOldestConnections) {
  StartCluster({"--max-connections-per-identity=40"});
  for (const std::string& server : Servers()) {
    SCOPED_TRACE(server);
    ConnectionOptions options;
    options.credential = Token("attacker/");
    std::vector<std::unique_ptr<Connection>> flood;
    for (int i = 0; i < 70; ++i) {
      auto conn = Connection::Open(server, options);
      ASSERT_TRUE(conn.ok()) << conn.status();  // each new one is served...
      flood.push_back(std::move(*conn));
    }
    // ...in place of the oldest idle ones of the same token.
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
          for (int i = 0; i < 30; ++i) {
            if (!ClosedByServer(flood[i]->fd())) return false;
          }
          return true;
        },
        absl::Seconds(10), absl::Milliseconds(20)))
        << server;
    for (int i = 30; i < 70; ++i) EXPECT_FALSE(ClosedByServer(flood[i]->fd())) << server << i;
    ExpectVictimServed("idle-" + server.substr(server.rfind(':') + 1), 5, absl::Seconds(10));
  }
}

TEST_F(LimitsAttackTest, AHandshakeFloodFromTheVictimsAddressNeverLocksItOut) {
  StartCluster({"--max-unauthenticated-connections=200"});
  // 400 sockets per server from 127.0.0.1, the victim's own address, that
  // never say Hello; one thread keeps reopening the ones closed, as an
  // attacker would for ever.
  std::vector<std::unique_ptr<testing::RawPeer>> flood;
  for (const std::string& server : Servers()) {
    for (int i = 0; i < 400; ++i) flood.push_back(std::make_unique<testing::RawPeer>(server));
  }
  size_t reopened_before = 0;
  std::atomic<bool> done{false};
  std::atomic<size_t> reopened{0};
  std::thread churn([&] {
    while (!done.load()) {
      for (size_t i = 0; i < flood.size() && !done.load(); ++i) {
        if (!flood[i]->ClosedByServer()) continue;
        flood[i] = std::make_unique<testing::RawPeer>(Servers()[i / 400]);
        reopened.fetch_add(1);
      }
    }
  });
  // The first 200 of each server were closed for newer ones.
  EXPECT_TRUE(testing::WaitUntil([&] { return reopened.load() >= 400; }, absl::Seconds(20),
                                 absl::Milliseconds(20)));
  reopened_before = reopened.load();
  ExpectVictimServed("handshake-flood", 10, absl::Seconds(10));
  done = true;
  churn.join();
  EXPECT_GT(reopened.load(), reopened_before) << "the flood went on while the victim was served";
}

// `sends` connections of one tenant each claim a 63 MiB meta and send it,
// 1 MiB at a time, all at once: each sends its header and first MiB, waits
// for the others to have done so (so that a loaded machine cannot run them
// one after another), then the rest. Returns how many the server cut off
// (closed before their meta was all sent).
int SendHugeMetas(const std::string& server, std::shared_ptr<const Credential> token, int sends) {
  ConnectionOptions options;
  options.credential = std::move(token);
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < sends; ++i) {
    auto conn = Connection::Open(server, options);
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (conn.ok()) conns.push_back(std::move(*conn));
  }
  std::atomic<int> cut{0};
  absl::Barrier* started = new absl::Barrier(static_cast<int>(conns.size()));
  std::vector<std::thread> senders;
  for (const auto& conn : conns) {
    senders.emplace_back([&cut, started, fd = conn->fd()] {
      constexpr uint32_t kMeta = 63u << 20;
      std::vector<uint8_t> header = testing::Header(kFrameMagic, kMeta, 0);
      std::vector<uint8_t> chunk(1 << 20, 0x42);
      bool sent = ::send(fd, header.data(), header.size(), MSG_NOSIGNAL) > 0 &&
                  ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) ==
                      static_cast<ssize_t>(chunk.size());
      if (started->Block()) delete started;  // the last one out deletes it
      for (uint32_t at = chunk.size(); sent && at < kMeta; at += chunk.size()) {
        size_t n = std::min<size_t>(chunk.size(), kMeta - at);
        sent = ::send(fd, chunk.data(), n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
      }
      if (!sent) cut.fetch_add(1);
    });
  }
  for (std::thread& t : senders) t.join();
  return cut.load();
}

// Peak and current resident memory of a process (VmHWM, VmRSS), in bytes.
uint64_t StatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrFormat("/proc/%d/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

TEST_F(LimitsAttackTest, HugeMetasSentInFullStayUnderTheMemoryCap) {
  constexpr uint64_t kCap = 128ull << 20;
  StartCluster({"--max-request-memory=128MiB"});
  const pid_t pids[] = {cluster_->directory_pid(), cluster_->node_pid(0)};
  for (int s = 0; s < 2; ++s) {
    uint64_t before = StatusBytes(pids[s], "VmRSS");
    // 8 x 63 MiB (504 MiB) sent at once: at most two fit under the cap.
    int cut = SendHugeMetas(Servers()[s], Token("attacker/"), 8);
    uint64_t peak = StatusBytes(pids[s], "VmHWM");
    // How many were cut depends on how the server's reads interleave (a
    // loaded machine may serve them nearly one after another); the bound on
    // memory is what must hold either way.
    std::cout << Servers()[s] << ": " << cut << " of 8 cut off\n";
    EXPECT_LT(peak, before + kCap + (48ull << 20))
        << Servers()[s] << ": RSS " << before << ", peak " << peak;
    ExpectVictimServed(absl::StrFormat("metas-%d", s), 5, absl::Seconds(10));
  }
}

// The directory's log, as written so far.
std::string DirectoryLog(const LocalCluster& cluster) {
  std::ifstream in(cluster.work_dir() + "/directory.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(LimitsAttackTest, TheDirectorysProbeIsNeverRefusedByANodesCaps) {
  StartCluster({"--max-connections-per-identity=20", "--max-unauthenticated-connections=20",
                "--max-connections=64"});
  // Every cap of the node is full: a tenant's 40 connections, 100 sockets
  // in their handshake.
  ConnectionOptions options;
  options.credential = Token("attacker/");
  std::vector<std::unique_ptr<Connection>> tenant;
  for (int i = 0; i < 40; ++i) {
    auto conn = Connection::Open(cluster_->node_address(0), options);
    ASSERT_TRUE(conn.ok()) << conn.status();
    tenant.push_back(std::move(*conn));
  }
  std::vector<std::unique_ptr<testing::RawPeer>> half_open;
  for (int i = 0; i < 100; ++i) {
    half_open.push_back(std::make_unique<testing::RawPeer>(cluster_->node_address(0)));
  }
  // The pool's own report (the cluster key) makes the directory probe the
  // node through the full caps. It answers: the node stays up, never
  // suspect, never down.
  ConnectionOptions as_pool;
  as_pool.credential = std::make_shared<Credential>(key_);
  auto reporter = Connection::Open(cluster_->directory_address(), as_pool);
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  auto state = Admin(**testing::ConnectTo(*cluster_)).State();
  ASSERT_TRUE(state.ok()) << state.status();
  uint32_t node_id = state->nodes.at(0).node_id;
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateGetStatus(fbb), std::span<const uint32_t>(&node_id, 1));
  ASSERT_TRUE((*reporter)->Call(fbb).ok());
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return absl::StrContains(DirectoryLog(*cluster_), "answered the directory's probe"); },
      absl::Seconds(10), absl::Milliseconds(20)))
      << DirectoryLog(*cluster_);
  EXPECT_EQ(DirectoryLog(*cluster_).find("-> suspect"), std::string::npos);
  EXPECT_EQ(DirectoryLog(*cluster_).find("-> down"), std::string::npos);
  ExpectVictimServed("probed", 3, absl::Seconds(10));
}

}  // namespace
}  // namespace unipool
