// Tenants attacking each other through the directory and the nodes, by real
// processes on loopback: an admin token with a prefix used outside it, a
// node token with a prefix, another tenant's put committed or aborted (with
// and without a client id), and an admin token's checksums of slab ranges.
// Each attack fails with a clear error while the victim keeps working.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/connection.h"
#include "unipool/common/protocol.h"
#include "unipool/testing/keyed_cluster.h"
#include "unipool/testing/raw_requests.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using testing::ExpectRefused;

class TenantAttackTest : public testing::KeyedClusterTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartKeyedCluster("tenants", OneTcpNode())); }
  // Every byte over TCP.
  std::unique_ptr<Client> Connect(const std::string& key_file) {
    ClientOptions options;
    options.shm = false;
    return KeyedClusterTest::Connect(key_file, options);
  }
  // Tells the directory, with every request from `reporter`, that the live
  // node is unreachable, while a tenant gets its pages; expects none of its
  // gets to fail and the node never to be suspect.
  void ExpectFalseReportsHideNoNode(std::shared_ptr<const Credential> reporter);
};

TEST_F(TenantAttackTest, AnAdminWithAPrefixAdministersOnlyItsPrefix) {
  auto owner = Connect(cluster_->key_file());
  ASSERT_NE(owner, nullptr);
  ASSERT_TRUE(owner->Put("a/page", testing::PageBytes("a", 4096)).ok());
  ASSERT_TRUE(owner->Put("b/secret", testing::PageBytes("b", 4096)).ok());

  auto a_client = Connect(TokenFile("a-admin.token", wire::Role::Admin, "a/"));
  ASSERT_NE(a_client, nullptr);
  Admin a(*a_client);
  const char kOutside[] = "outside the token's prefix";
  // Within its prefix: everything an admin does.
  EXPECT_TRUE(a.List("a/").ok());
  EXPECT_TRUE(a.Stat("a/page").ok());
  EXPECT_TRUE(a.Pin("a/", /*prefix=*/true).ok());
  EXPECT_TRUE(a.Unpin("a/", /*prefix=*/true).ok());
  EXPECT_TRUE(a.Evict("a/nothing-here").ok());
  // Outside it: refused, and b's object is untouched.
  ExpectRefused(a.List("").status(), kOutside);
  ExpectRefused(a.List("b/").status(), kOutside);
  ExpectRefused(a.Stat("b/secret").status(), kOutside);
  ExpectRefused(a_client->Get("b/secret").status(), kOutside);
  ExpectRefused(a_client->Remove("b/secret"), kOutside);
  ExpectRefused(a.Pin("b/secret"), kOutside);
  ExpectRefused(a.Pin("b/", /*prefix=*/true), kOutside);
  ExpectRefused(a.Evict("").status(), kOutside);  // evict --all
  ExpectRefused(a.Evict("b/").status(), kOutside);
  ExpectRefused(a.Drain(cluster_->node_name(0)), "only an admin without a prefix drains");
  ExpectRefused(a.Undrain(cluster_->node_name(0)), "only an admin without a prefix drains");
  auto secret = owner->Get("b/secret");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, testing::PageBytes("b", 4096));

  // An admin without a prefix still administers the whole pool.
  auto whole = Connect(TokenFile("admin.token", wire::Role::Admin, ""));
  ASSERT_NE(whole, nullptr);
  Admin admin(*whole);
  EXPECT_TRUE(admin.Stat("b/secret").ok());
  EXPECT_TRUE(admin.List("").ok());
}

TEST_F(TenantAttackTest, ANodeTokenWithAPrefixIsRefusedAtCreationAndRegistration) {
  auto created = testing::Run({ExecutableDir() + "/unipoolctl", "--key-file", cluster_->key_file(),
                               "token", "create", "--role", "node", "--prefix", "x/"});
  EXPECT_EQ(created.exit_code, 2) << created.err;
  EXPECT_NE(created.err.find("a node token has no prefix"), std::string::npos) << created.err;
  EXPECT_TRUE(created.out.empty()) << created.out;
  EXPECT_EQ(std::count(created.err.begin(), created.err.end(), '\n'), 1) << created.err;

  // One made some other way is refused when it registers.
  auto conn = Open(cluster_->directory_address(), Token(wire::Role::Node, "x/"));
  ASSERT_NE(conn, nullptr);
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString("rogue");
  FinishMessage(fbb, wire::CreateRegisterNode(fbb, name, 0, 0, 1, 64 << 20));
  ExpectRefused((*conn).Call(fbb).status(), "a node token must have no prefix");
  EXPECT_TRUE(cluster_->WaitForNodesUp(1, absl::Seconds(10)).ok());
}

// A raw PutStart of one 4 KiB `key` as client `client`: its put id.
uint64_t StartPut(Connection& conn, const std::string& key, uint64_t client) {
  auto started = testing::RawPutStart(conn, {key}, 4096, client);
  EXPECT_TRUE(started.ok()) << started.status();
  return started.ok() ? (*started)[0].put_id : 0;
}

absl::Status CommitPut(Connection& conn, uint64_t put_id, uint64_t client) {
  return testing::RawPutCommit(conn, {put_id}, /*checksum=*/0x5eed, client).at(0);
}

void AbortPut(Connection& conn, uint64_t put_id, uint64_t client) {
  EXPECT_TRUE(testing::RawPutAbort(conn, {put_id}, client).ok());
}

TEST_F(TenantAttackTest, AnotherTenantsPutIsNeitherCommittedNorAbortedByUs) {
  auto victim = Open(cluster_->directory_address(), Token(wire::Role::Client, "victim/"));
  auto attacker = Open(cluster_->directory_address(), Token(wire::Role::Client, "attacker/"));
  ASSERT_NE(victim, nullptr);
  ASSERT_NE(attacker, nullptr);
  // With client id 0 (none), and with the same id on both sides: the
  // attacker learned the put id (as if leaked) and names it.
  for (uint64_t client : {uint64_t{0}, uint64_t{0x5a3e}}) {
    SCOPED_TRACE(absl::StrFormat("client id %u", client));
    std::string key = absl::StrFormat("victim/page-%u", client);
    uint64_t id = StartPut(*victim, key, client);
    ASSERT_NE(id, 0u);
    absl::Status stolen = CommitPut(*attacker, id, client);
    EXPECT_EQ(stolen.code(), absl::StatusCode::kNotFound) << stolen;
    AbortPut(*attacker, id, client);  // ignored: not the attacker's
    absl::Status own = CommitPut(*victim, id, client);
    EXPECT_TRUE(own.ok()) << own;
    auto owner = Connect(cluster_->key_file());
    ASSERT_NE(owner, nullptr);
    auto info = Admin(*owner).Stat(key);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->checksum, 0x5eedu);
  }
  // The victim's own abort still works.
  uint64_t id = StartPut(*victim, "victim/aborted", 0);
  AbortPut(*victim, id, 0);
  EXPECT_EQ(CommitPut(*victim, id, 0).code(), absl::StatusCode::kNotFound);
}

TEST_F(TenantAttackTest, OnlyTheDirectoryChecksumsSlabRanges) {
  auto admin = Open(cluster_->node_address(0), Token(wire::Role::Admin, ""));
  ASSERT_NE(admin, nullptr);
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range one_byte(4096, 1);
  FinishMessage(fbb, wire::CreateChecksum(fbb, fbb.CreateVectorOfStructs(&one_byte, 1)));
  ExpectRefused(admin->Call(fbb).status(), "only the directory (the cluster key) orders checksums");
  // The directory's own (the probe's, the verifier's) still answer.
  auto directory = Open(cluster_->node_address(0), std::make_shared<Credential>(key_));
  ASSERT_NE(directory, nullptr);
  auto reply = directory->Call(fbb);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_NE(reply->message()->body_as_ChecksumReply(), nullptr);
}

void TenantAttackTest::ExpectFalseReportsHideNoNode(std::shared_ptr<const Credential> reporter) {
  auto victim = Connect(TokenFile("victim.token", wire::Role::Client, "victim/"));
  ASSERT_NE(victim, nullptr);
  for (int i = 0; i < 10; ++i) {
    std::string key = absl::StrFormat("victim/%d", i);
    ASSERT_TRUE(victim->Put(key, testing::PageBytes(key, 4096)).ok()) << key;
  }
  auto owner = Connect(cluster_->key_file());
  ASSERT_NE(owner, nullptr);
  auto state = Admin(*owner).State();
  ASSERT_TRUE(state.ok()) << state.status();
  uint32_t node_id = state->nodes.at(0).node_id;
  // The attacker says the live node is unreachable with every request.
  auto attacker = Open(cluster_->directory_address(), std::move(reporter));
  ASSERT_NE(attacker, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> reports{0};
  std::thread liar([&] {
    while (!done.load()) {
      flatbuffers::FlatBufferBuilder fbb;
      FinishMessage(fbb, wire::CreateGetStatus(fbb), std::span<const uint32_t>(&node_id, 1));
      if (!attacker->Call(fbb).ok()) return;
      reports.fetch_add(1);
    }
  });
  int failed = 0, gets = 0;
  while (gets < 400 || reports.load() < 200) {
    std::string key = absl::StrFormat("victim/%d", gets++ % 10);
    auto got = victim->Get(key);
    failed += got.ok() && *got == testing::PageBytes(key, 4096) ? 0 : 1;
  }
  done = true;
  liar.join();
  EXPECT_EQ(failed, 0) << "of " << gets << " gets, during " << reports.load() << " false reports";
  state = Admin(*owner).State();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->nodes.at(0).up);
  EXPECT_FALSE(state->nodes.at(0).suspect);
  // Not for a moment: the directory's probe answered each time first.
  std::ifstream log(cluster_->work_dir() + "/directory.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("-> suspect"), std::string::npos) << text;
}

TEST_F(TenantAttackTest, OneTenantsFalseReportsHideNoNodeFromAnother) {
  ExpectFalseReportsHideNoNode(Token(wire::Role::Client, "attacker/"));
}

// The cluster key's word is checked the same way: the directory's own probe
// decides, so a client holding the key cannot hide a live node either.
TEST_F(TenantAttackTest, FalseReportsWithTheClusterKeyHideNoNode) {
  ExpectFalseReportsHideNoNode(std::make_shared<Credential>(key_));
}

}  // namespace
}  // namespace unipool
