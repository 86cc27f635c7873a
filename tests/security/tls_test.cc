// TLS on the TCP connections (common/include/unipool/common/tls.h), with real
// processes on loopback: a pool whose directory and nodes serve TLS works
// for TLS clients (put, get, list, status, a drain's node-to-node copies);
// plain clients, clients trusting another CA or expecting another name are
// refused with a clear error while the servers keep serving; a TLS client
// of a plain server is told so; garbage on a TLS port crashes nothing; bad
// TLS flags stop a server at startup with one line.
#include "unipool/common/tls.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/tls_files.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

namespace unipool {
namespace {

using testing::ConnectTo;
using testing::PageBytes;
using testing::StartTestCluster;
using testing::TestAuth;
using testing::TestCluster;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { unsetenv("UNIPOOL_TLS_CA"); }

  void SetUp() override {
    dir_ = testing::FreshTestDir("tls-files");
    ASSERT_TRUE(WriteTlsFiles(dir_ + "/pool", {"localhost", "127.0.0.1"}).ok());
    ASSERT_TRUE(WriteTlsFiles(dir_ + "/other", {"localhost", "127.0.0.1"}).ok());
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // A keyed pool of `nodes` nodes serving TLS, with shared memory off so
  // every byte goes over TCP.
  void StartTlsPool(int nodes) {
    LocalClusterOptions options;
    options.nodes = nodes;
    options.pool_size = 64 << 20;
    options.tls_dir = dir_ + "/pool";
    options.node_flags = {"--shm=off"};
    auto cluster = StartTestCluster("tls", std::move(options), TestAuth::kClusterKey);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  ClientOptions TcpOnly(std::string tls_ca) {
    ClientOptions options;
    options.shm = false;
    options.rdma = RdmaPolicy::kOff;
    options.tls_ca = std::move(tls_ca);
    options.directory_retry = absl::ZeroDuration();
    return options;
  }
  // A client's put and get of one page round trip (the servers still serve).
  void ExpectServing(const std::string& key) {
    auto client = ConnectTo(*cluster_, TcpOnly(""));
    ASSERT_TRUE(client.ok()) << client.status();
    auto bytes = PageBytes(key, 100 << 10);
    ASSERT_TRUE((*client)->Put(key, bytes).ok());
    auto got = (*client)->Get(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, bytes);
  }

  std::string dir_;
  TestCluster cluster_;
};

TEST_F(TlsTest, PutGetListAndStatusWorkOverTls) {
  StartTlsPool(2);
  auto client = ConnectTo(*cluster_, TcpOnly(""));
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::vector<uint8_t>> pages;
  for (int i = 0; i < 20; ++i) {
    std::string key = "tls/" + std::to_string(i);
    pages.push_back(PageBytes(key, (i + 1) * 37'000));
    ASSERT_TRUE((*client)->Put(key, pages.back()).ok()) << key;
  }
  for (int i = 0; i < 20; ++i) {
    auto got = (*client)->Get("tls/" + std::to_string(i));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, pages[i]);
  }
  ClientStats stats = (*client)->stats();
  EXPECT_EQ(stats.shm_requests, 0u);
  EXPECT_GE(stats.tcp_requests, 40u);
  Admin admin(**client);
  auto listed = admin.List("tls/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->entries.size(), 20u);
  auto state = admin.State();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->nodes.size(), 2u);
  // The CLI as an operator runs it.
  auto status =
      testing::Run({ExecutableDir() + "/unipoolctl", "--directory", cluster_->directory_address(),
                    "--key-file", cluster_->key_file(), "--tls-ca", cluster_->tls_ca(), "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("2/2 nodes up"), std::string::npos) << status.out;
}

TEST_F(TlsTest, APlainClientIsToldTheServerSpeaksOnlyTls) {
  StartTlsPool(1);
  ClientOptions plain = TcpOnly("");
  plain.directory = cluster_->directory_address();
  plain.key_file = cluster_->key_file();
  auto refused = Client::Connect(plain);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("speaks only TLS"), std::string::npos)
      << refused.status();
  // A node's port answers a plain Hello the same way.
  testing::RawPeer peer(cluster_->node_address(0));
  peer.Hello();
  absl::Status error = peer.ExpectError();
  EXPECT_EQ(error.code(), absl::StatusCode::kFailedPrecondition) << error;
  ExpectServing("after-plain");
}

TEST_F(TlsTest, AClientTrustingAnotherCaOrNameIsRefused) {
  StartTlsPool(1);
  auto wrong_ca = ConnectTo(*cluster_, TcpOnly(dir_ + "/other/" + kTlsCaCert));
  ASSERT_FALSE(wrong_ca.ok());
  EXPECT_EQ(wrong_ca.status().code(), absl::StatusCode::kFailedPrecondition) << wrong_ca.status();
  EXPECT_NE(wrong_ca.status().message().find("not trusted"), std::string::npos)
      << wrong_ca.status();

  ClientOptions wrong_name = TcpOnly("");
  wrong_name.tls_name = "elsewhere.example";
  auto refused = ConnectTo(*cluster_, wrong_name);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not trusted"), std::string::npos) << refused.status();

  ClientOptions right_name = TcpOnly("");
  right_name.tls_name = "localhost";  // in the certificate; the host dialled is 127.0.0.1
  EXPECT_TRUE(ConnectTo(*cluster_, right_name).ok());
  ExpectServing("after-wrong-ca");
}

TEST_F(TlsTest, ATlsClientOfAPlainServerIsToldSo) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 64 << 20;
  auto plain = StartTestCluster("tls-plain", std::move(options));
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto client = ConnectTo(**plain, TcpOnly(dir_ + "/pool/" + kTlsCaCert));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kFailedPrecondition) << client.status();
  EXPECT_NE(client.status().message().find("does not speak TLS"), std::string::npos)
      << client.status();
  EXPECT_TRUE(ConnectTo(**plain, TcpOnly("")).ok());
}

TEST_F(TlsTest, DrainCopiesBetweenNodesOverTls) {
  StartTlsPool(2);
  auto client = ConnectTo(*cluster_, TcpOnly(""));
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::string> keys;
  for (int i = 0; i < 16; ++i) {
    keys.push_back("drain/" + std::to_string(i));
    ASSERT_TRUE((*client)->Put(keys.back(), PageBytes(keys.back(), 200 << 10)).ok());
  }
  Admin admin(**client);
  ASSERT_TRUE(admin.Drain(cluster_->node_name(0)).ok());
  auto listed = admin.List("drain/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->entries.size(), keys.size());
  for (const ListEntry& entry : listed->entries) {
    EXPECT_EQ(entry.nodes, std::vector<std::string>{cluster_->node_name(1)}) << entry.key;
  }
  for (const std::string& key : keys) {
    auto got = (*client)->Get(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, PageBytes(key, 200 << 10)) << key;
  }
}

TEST_F(TlsTest, GarbageOnATlsPortCrashesNothing) {
  StartTlsPool(1);
  std::mt19937_64 rng(12);
  for (const std::string& address : {cluster_->directory_address(), cluster_->node_address(0)}) {
    for (int round = 0; round < 40; ++round) {
      testing::RawPeer peer(address);
      std::vector<uint8_t> bytes(1 + rng() % 3000);
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      // Half the rounds look like a TLS handshake record, then go wrong.
      if (round % 2 == 0) bytes[0] = 0x16, bytes[1] = 0x03, bytes[2] = 0x01;
      peer.Send(bytes);
      peer.HalfClose();  // a record cut short: the server must not wait for the rest
      EXPECT_TRUE(peer.Closed()) << address << " round " << round;
    }
  }
  EXPECT_EQ(kill(cluster_->directory_pid(), 0), 0);
  EXPECT_EQ(kill(cluster_->node_pid(0), 0), 0);
  ExpectServing("after-garbage");
}

TEST_F(TlsTest, TlsInitWritesTheFilesOnceWithPrivateKeys) {
  std::string made = dir_ + "/made";
  std::string ctl = ExecutableDir() + "/unipoolctl";
  auto init = testing::Run({ctl, "tls", "init", made, "--hosts=127.0.0.1,pool.example"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  for (const char* key : {kTlsCaKey, kTlsServerKey}) {
    auto perms = std::filesystem::status(made + "/" + key).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << key;
  }
  EXPECT_TRUE(TlsServerConfig::Load(made + "/" + kTlsServerCert, made + "/" + kTlsServerKey).ok());
  auto again = testing::Run({ctl, "tls", "init", made});
  EXPECT_EQ(again.exit_code, 1) << again.err;
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(testing::Run({ctl, "tls", "init"}).exit_code, 2);
  // A host name no certificate can hold, or an empty one in the list, is bad usage.
  for (const char* hosts : {"--hosts=pool example", "--hosts=ok.example,,x"}) {
    auto bad = testing::Run({ctl, "tls", "init", dir_ + "/bad", hosts});
    EXPECT_EQ(bad.exit_code, 2) << hosts << ": " << bad.err;
    EXPECT_NE(bad.err.find("--hosts"), std::string::npos) << bad.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/bad")) << hosts;
  }
}

TEST_F(TlsTest, BadTlsFlagsStopAServerWithOneLine) {
  std::string pool = dir_ + "/pool/", other = dir_ + "/other/";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tls-cert=" + pool + kTlsServerCert}, "go together"},
      {{"--tls-cert=" + pool + "missing.pem", "--tls-key=" + pool + kTlsServerKey,
        "--tls-ca=" + pool + kTlsCaCert},
       "missing.pem"},
      {{"--tls-cert=" + pool + kTlsServerCert, "--tls-key=" + other + kTlsServerKey,
        "--tls-ca=" + pool + kTlsCaCert},
       "does not belong"},
      {{"--tls-cert=" + pool + kTlsServerCert, "--tls-key=" + pool + kTlsServerKey,
        "--tls-ca=" + pool + kTlsServerKey},
       "CA certificate"},
  };
  for (const auto& [flags, expected] : cases) {
    std::vector<std::string> argv = {ExecutableDir() + "/unipool-directory", "--listen=127.0.0.1:0",
                                     "--db=" + dir_ + "/db"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto run = testing::Run(argv);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_NE(run.err.find(expected), std::string::npos) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
}

}  // namespace
}  // namespace unipool
