// Authentication and roles, attacked by real processes on loopback: a pool
// started with a cluster key refuses peers without it, with a wrong key, with
// a replayed proof, or with a token used outside its role or prefix; the
// key's holders and valid tokens keep working. Also the key file's own
// rules (mode 0600) and the refusal to serve a network without a key.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/connection.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/test_pages.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

class AuthAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-auth-%d", getpid()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    key_path_ = dir_ + "/cluster.key";
    auto keygen = testing::Run({Bin("unipoolctl"), "keygen", key_path_});
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    auto key = LoadCredentialFile(key_path_);
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;

    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 64 << 20;
    options.work_dir = dir_ + "/cluster";
    options.key_file = key_path_;
    options.node_flags = {"--shm=off"};
    auto cluster = LocalCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  void TearDown() override {
    cluster_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  static std::string Bin(const std::string& name) { return ExecutableDir() + "/" + name; }

  // A key file holding `credential`, mode 0600.
  std::string WriteKey(const std::string& name, const Credential& credential) {
    std::string path = dir_ + "/" + name;
    std::filesystem::remove(path);
    EXPECT_TRUE(WriteCredentialFile(path, credential).ok());
    return path;
  }
  std::string Token(const std::string& name, wire::Role role, const std::string& prefix) {
    auto token = NewToken(key_, role, prefix);
    EXPECT_TRUE(token.ok());
    return WriteKey(name, *token);
  }
  absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& key_file) {
    ClientOptions options;
    options.directory = cluster_->directory_address();
    options.key_file = key_file;
    return Client::Connect(options);
  }

  std::string dir_, key_path_;
  Credential key_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(AuthAttackTest, TheKeyHolderWorksAndNobodyElseGetsIn) {
  auto client = Connect(key_path_);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Put("k1", testing::PageBytes("k1", 50000)).ok());
  EXPECT_EQ(*(*client)->Get("k1"), testing::PageBytes("k1", 50000));

  auto keyless = Connect("");
  ASSERT_FALSE(keyless.ok());
  EXPECT_EQ(keyless.status().code(), absl::StatusCode::kUnauthenticated) << keyless.status();
  EXPECT_NE(keyless.status().message().find("requires authentication"), std::string::npos)
      << keyless.status();

  auto other_pool = NewClusterKey();
  ASSERT_TRUE(other_pool.ok());
  auto wrong = Connect(WriteKey("wrong.key", *other_pool));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();

  // Raw peers get nothing from either server without the key.
  for (const std::string& server : {cluster_->directory_address(), cluster_->node_address(0)}) {
    testing::RawPeer peer(server);
    peer.Hello();
    absl::Status s = peer.ExpectError();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_TRUE(peer.Closed());
  }
}

TEST_F(AuthAttackTest, ARecordedProofIsUselessOnANewConnection) {
  // The attacker saw one whole handshake (here: computed it with the key) and
  // replays the client's proof on a new connection: the server's nonce is new.
  auto handshake = [&](testing::RawPeer& peer, const Nonce& client_nonce, Nonce* server_nonce) {
    flatbuffers::FlatBufferBuilder fbb;
    auto nonce = fbb.CreateVector(client_nonce.data(), client_nonce.size());
    FinishMessage(fbb, wire::CreateHello(fbb, kProtocolVersion, wire::Role::Client, 0, nonce));
    peer.SendFrame(fbb);
    auto reply = peer.Receive();
    ASSERT_TRUE(reply.ok()) << reply.status();
    const wire::HelloReply* hello = reply->message()->body_as_HelloReply();
    ASSERT_NE(hello, nullptr);
    ASSERT_EQ(hello->nonce()->size(), kNonceBytes);
    std::copy(hello->nonce()->begin(), hello->nonce()->end(), server_nonce->begin());
  };
  auto send_proof = [](testing::RawPeer& peer, const Secret& proof) {
    flatbuffers::FlatBufferBuilder fbb;
    FinishMessage(fbb, wire::CreateHelloProof(fbb, fbb.CreateVector(proof.data(), proof.size())));
    peer.SendFrame(fbb);
  };
  Nonce client_nonce = RandomNonce(), first_server_nonce, second_server_nonce;
  testing::RawPeer first(cluster_->directory_address());
  handshake(first, client_nonce, &first_server_nonce);
  Secret recorded = HandshakeProof(key_.secret, ProofSide::kClient, wire::Role::Client, "", false,
                                   client_nonce, first_server_nonce);
  send_proof(first, recorded);
  auto ack = first.Receive();
  ASSERT_TRUE(ack.ok());
  EXPECT_NE(ack->message()->body_as_Ack(), nullptr);

  testing::RawPeer replay(cluster_->directory_address());
  handshake(replay, client_nonce, &second_server_nonce);
  EXPECT_NE(first_server_nonce, second_server_nonce);
  send_proof(replay, recorded);
  absl::Status s = replay.ExpectError();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_TRUE(replay.Closed());
}

TEST_F(AuthAttackTest, TokensAreHeldToTheirRoleAndPrefix) {
  auto tenant = Connect(Token("tenant-a.token", wire::Role::Client, "tenant-a/"));
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  Client& a = **tenant;
  ASSERT_TRUE(a.Put("tenant-a/page", testing::PageBytes("a", 4096)).ok());
  EXPECT_EQ(*a.Get("tenant-a/page"), testing::PageBytes("a", 4096));

  auto owner = Connect(key_path_);
  ASSERT_TRUE(owner.ok());
  ASSERT_TRUE((*owner)->Put("tenant-b/secret", testing::PageBytes("b", 4096)).ok());

  auto denied = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kPermissionDenied &&
           s.message().find("refused") != std::string::npos;
  };
  absl::Status put = a.Put("tenant-b/mine-now", testing::PageBytes("x", 4096));
  EXPECT_TRUE(denied(put)) << put;
  EXPECT_TRUE(denied(a.Get("tenant-b/secret").status()));
  EXPECT_TRUE(denied(a.Remove("tenant-b/secret")));
  Admin a_admin(a);  // the admin calls, over the tenant's connections
  EXPECT_TRUE(a_admin.List("tenant-a/").ok());
  EXPECT_TRUE(denied(a_admin.List("tenant-b/").status()));
  EXPECT_TRUE(denied(a_admin.List("").status()));
  EXPECT_TRUE(denied(a_admin.Evict("").status()));
  EXPECT_TRUE(denied(a_admin.Drain(cluster_->node_name(0))));
  EXPECT_TRUE(denied(a_admin.Pin("tenant-a/", /*prefix=*/true)));
  EXPECT_EQ(*(*owner)->Get("tenant-b/secret"), testing::PageBytes("b", 4096));

  // An admin token may do what a client may not, anywhere.
  auto admin_client = Connect(Token("admin.token", wire::Role::Admin, ""));
  ASSERT_TRUE(admin_client.ok()) << admin_client.status();
  Admin admin(**admin_client);
  EXPECT_TRUE(admin.List("").ok());
  EXPECT_TRUE(admin.Pin("tenant-b/", /*prefix=*/true).ok());
  EXPECT_TRUE(admin.Evict("nothing-here/").ok());

  // A token claiming a prefix it was not made for fails the handshake.
  auto forged = NewToken(key_, wire::Role::Client, "tenant-a/");
  forged->prefix = "tenant-b/";
  auto forged_client = Connect(WriteKey("forged.token", *forged));
  ASSERT_FALSE(forged_client.ok());
  EXPECT_EQ(forged_client.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthAttackTest, OnlyNodesRegisterAndNodeTokensServeNothingElse) {
  // A client token cannot register a rogue node (nor take a live node's name).
  ConnectionOptions as_client;
  auto client_token = NewToken(key_, wire::Role::Client, "");
  as_client.credential = std::make_shared<Credential>(*client_token);
  auto conn = Connection::Open(cluster_->directory_address(), as_client);
  ASSERT_TRUE(conn.ok()) << conn.status();
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(cluster_->node_name(0));
  FinishMessage(fbb, wire::CreateRegisterNode(fbb, name, 0, 0, 1, 1ull << 40));
  auto reply = (*conn)->Call(fbb);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kPermissionDenied) << reply.status();
  ASSERT_TRUE(cluster_->WaitForNodesUp(1, absl::Seconds(10)).ok());

  // A node token cannot read objects from the directory or a node.
  auto node = Connect(Token("node.token", wire::Role::Node, ""));
  EXPECT_FALSE(node.ok());  // Connect asks for the pool status: refused
  EXPECT_EQ(node.status().code(), absl::StatusCode::kPermissionDenied) << node.status();
}

TEST_F(AuthAttackTest, OneClientCannotReserveThePoolFull) {
  // The victim's working set: 10 MiB of a 64 MiB pool.
  auto victim = Connect(Token("victim.token", wire::Role::Client, "victim/"));
  ASSERT_TRUE(victim.ok()) << victim.status();
  for (int i = 0; i < 10; ++i) {
    std::string key = absl::StrFormat("victim/%d", i);
    ASSERT_TRUE((*victim)->Put(key, testing::PageBytes(key, 1 << 20)).ok());
  }
  // The attacker reserves 4 MiB at a time and never commits.
  ConnectionOptions as_attacker;
  as_attacker.credential =
      std::make_shared<Credential>(*NewToken(key_, wire::Role::Client, "attacker/"));
  auto conn = Connection::Open(cluster_->directory_address(), as_attacker);
  ASSERT_TRUE(conn.ok()) << conn.status();
  int reserved = 0;
  absl::Status refusal;
  for (int round = 0; round < 64 && refusal.ok(); ++round) {
    flatbuffers::FlatBufferBuilder fbb;
    std::string key = absl::StrFormat("attacker/%d", round);
    std::vector<flatbuffers::Offset<wire::PutStartItem>> items = {wire::CreatePutStartItem(
        fbb, fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size()), 4 << 20)};
    FinishMessage(fbb, wire::CreatePutStart(fbb, fbb.CreateVector(items)));
    auto reply = (*conn)->Call(fbb);
    ASSERT_TRUE(reply.ok()) << reply.status();
    const wire::PutStartReply* r = reply->message()->body_as_PutStartReply();
    ASSERT_NE(r, nullptr);
    refusal = StatusFromWire(r->items()->Get(0)->status());
    if (refusal.ok()) ++reserved;
  }
  EXPECT_EQ(refusal.code(), absl::StatusCode::kResourceExhausted) << refusal;
  EXPECT_NE(refusal.message().find("quota"), std::string::npos) << refusal;
  EXPECT_LE(reserved * 4, 32) << "MiB reserved by one client in a 64 MiB pool";
  // Nothing of the victim's was evicted, and it still has room.
  for (int i = 0; i < 10; ++i) {
    std::string key = absl::StrFormat("victim/%d", i);
    auto got = (*victim)->Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    EXPECT_EQ(*got, testing::PageBytes(key, 1 << 20));
  }
  for (int i = 10; i < 15; ++i) {
    std::string key = absl::StrFormat("victim/%d", i);
    EXPECT_TRUE((*victim)->Put(key, testing::PageBytes(key, 1 << 20)).ok()) << key;
  }
}

TEST_F(AuthAttackTest, KeyFilesMustBePrivate) {
  std::string loose = dir_ + "/loose.key";
  std::filesystem::copy_file(key_path_, loose);
  chmod(loose.c_str(), 0644);
  auto client = Connect(loose);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("chmod 600"), std::string::npos) << client.status();
  auto directory =
      testing::Run({Bin("unipool-directory"), "--db", dir_ + "/db2", "--key-file", loose});
  EXPECT_EQ(directory.exit_code, 2) << directory.err;
  EXPECT_NE(directory.err.find("chmod 600"), std::string::npos) << directory.err;
  // keygen never overwrites a key.
  auto again = testing::Run({Bin("unipoolctl"), "keygen", key_path_});
  EXPECT_EQ(again.exit_code, 1) << again.err;
  struct stat st {};
  ASSERT_EQ(stat(key_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuthAttackTest, NoKeyMeansLoopbackOnlyUnlessInsecure) {
  auto refused =
      testing::Run({Bin("unipool-directory"), "--db", dir_ + "/db3", "--listen", "0.0.0.0:0"}, {},
                   "", absl::Seconds(30));
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("without a cluster key"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--insecure"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace unipool
