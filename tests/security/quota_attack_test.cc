// Tenants' quotas (issue 22 item 2), by real processes on loopback: tokens
// made by `unipoolctl token create` with --quota, --pin-quota and
// --reservation-quota; a tenant flooding a full pool with puts evicts its
// own objects, never another tenant's within its storage quota; pins past
// the pin quota are refused, so a pin flood cannot squeeze the others out;
// one-byte reservations are charged their allocation unit, so a flood of
// them cannot hold the pool. The victim keeps working throughout, and the
// usage per tenant shows in status and `unipoolctl tenants`.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/connection.h"
#include "unipool/common/protocol.h"
#include "unipool/platform/memory.h"
#include "unipool/testing/keyed_cluster.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPool = 64 * kMiB;

class QuotaAttackTest : public testing::KeyedClusterTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartKeyedCluster("quotas", OneTcpNode(kPool))); }

  std::vector<std::string> Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {ExecutableDir() + "/unipoolctl", "--directory",
                                     cluster_->directory_address(), "--key-file",
                                     cluster_->key_file()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  // A token made by unipoolctl with `flags`, saved in a file of its own.
  std::string MakeToken(const std::string& name, std::vector<std::string> flags) {
    std::vector<std::string> args = {"token", "create", "--role", "client"};
    args.insert(args.end(), flags.begin(), flags.end());
    testing::RunResult made = testing::Run(Ctl(args));
    EXPECT_EQ(made.exit_code, 0) << made.err;
    auto token = ParseCredential(made.out);
    EXPECT_TRUE(token.ok()) << token.status() << ": " << made.out;
    std::string path = cluster_->work_dir() + "/" + name;
    std::filesystem::remove(path);
    if (token.ok()) {
      EXPECT_TRUE(WriteCredentialFile(path, *token).ok());
    }
    return path;
  }
  // Every byte over TCP.
  std::unique_ptr<Client> Connect(const std::string& key_file) {
    ClientOptions options;
    options.shm = false;
    return KeyedClusterTest::Connect(key_file, options);
  }
  std::optional<TenantState> TenantOf(Client& client, std::string_view prefix) {
    auto state = Admin(client).State();
    EXPECT_TRUE(state.ok()) << state.status();
    if (!state.ok()) return std::nullopt;
    for (const TenantState& t : state->tenants) {
      if (t.prefix == prefix) return t;
    }
    return std::nullopt;
  }
  // Puts `count` pages of `size` under `prefix`; every one must succeed.
  void PutPages(Client& client, const std::string& prefix, int count, uint64_t size) {
    for (int i = 0; i < count; ++i) {
      std::string key = prefix + std::to_string(i);
      absl::Status s = client.Put(key, testing::PageBytes(key, size));
      ASSERT_TRUE(s.ok()) << key << ": " << s;
    }
  }
  void ExpectPages(Client& client, const std::string& prefix, int count, uint64_t size) {
    for (int i = 0; i < count; ++i) {
      std::string key = prefix + std::to_string(i);
      auto got = client.Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status();
      EXPECT_EQ(*got, testing::PageBytes(key, size)) << key;
    }
  }
};

TEST_F(QuotaAttackTest, APutFloodEvictsTheFloodersOwnObjectsNotAnotherTenantsWithinItsQuota) {
  auto victim = Connect(MakeToken("b.token", {"--prefix", "b/", "--quota", "16MiB"}));
  auto flooder = Connect(MakeToken("a.token", {"--prefix", "a/"}));  // no quota: unlimited
  ASSERT_NE(victim, nullptr);
  ASSERT_NE(flooder, nullptr);
  PutPages(*victim, "b/", 8, kMiB);
  // Twice the pool through it.
  PutPages(*flooder, "a/", 2 * kPool / kMiB, kMiB);
  ExpectPages(*victim, "b/", 8, kMiB);
  EXPECT_FALSE(flooder->Exists("a/0").value_or(true))
      << "the flooder's coldest object should have gone";
  EXPECT_TRUE(flooder->Exists(absl::StrFormat("a/%d", 2 * kPool / kMiB - 1)).value_or(false));

  // Usage per tenant: the cluster key sees every tenant, a tenant only itself.
  auto owner = Connect(cluster_->key_file());
  ASSERT_NE(owner, nullptr);
  std::optional<TenantState> b = TenantOf(*owner, "b/");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->objects, 8u);
  EXPECT_EQ(b->stored, 8 * kMiB);
  EXPECT_EQ(b->storage_quota, 16 * kMiB);
  ASSERT_TRUE(TenantOf(*owner, "a/").has_value());
  auto seen_by_b = Admin(*victim).State();
  ASSERT_TRUE(seen_by_b.ok()) << seen_by_b.status();
  ASSERT_EQ(seen_by_b->tenants.size(), 1u);
  EXPECT_EQ(seen_by_b->tenants[0].prefix, "b/");
  testing::RunResult listed = testing::Run(Ctl({"--json", "tenants"}));
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\"prefix\": \"b/\""), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(absl::StrFormat("\"storage_quota\": %d", 16 * kMiB)), std::string::npos)
      << listed.out;
}

TEST_F(QuotaAttackTest, PinsPastThePinQuotaAreRefusedSoAPinFloodLeavesRoomForOthers) {
  auto flooder = Connect(MakeToken("a.token", {"--prefix", "a/", "--pin-quota", "8MiB"}));
  auto victim = Connect(MakeToken("b.token", {"--prefix", "b/", "--quota", "32MiB"}));
  ASSERT_NE(flooder, nullptr);
  ASSERT_NE(victim, nullptr);
  const int pages = static_cast<int>(kPool / kMiB) - 8;  // the pool nearly full
  PutPages(*flooder, "a/", pages, kMiB);
  int pinned = 0;
  absl::Status refused;
  for (int i = 0; i < pages; ++i) {
    absl::Status s = Admin(*flooder).Pin(absl::StrFormat("a/%d", i));
    if (s.ok()) {
      ++pinned;
    } else {
      refused = s;
    }
  }
  EXPECT_EQ(pinned, 8);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("pin quota"), std::string::npos) << refused;
  // The victim's puts make room from the flooder's unpinned objects.
  PutPages(*victim, "b/", 24, kMiB);
  ExpectPages(*victim, "b/", 24, kMiB);
  auto owner = Connect(cluster_->key_file());
  ASSERT_NE(owner, nullptr);
  std::optional<TenantState> a = TenantOf(*owner, "a/");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->pinned, 8 * kMiB);
  EXPECT_EQ(a->pin_quota, 8 * kMiB);
}

// Sends PutStart batches of one-byte keys under `prefix` until one is
// refused; returns how many were reserved (and checks the refusal's kind).
uint64_t ReserveOneByteKeys(Connection& conn, const std::string& prefix) {
  constexpr int kBatch = 1024;
  uint64_t reserved = 0;
  for (int batch = 0; batch < 64; ++batch) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::PutStartItem>> items;
    for (int i = 0; i < kBatch; ++i) {
      std::string key = absl::StrFormat("%s%d-%d", prefix, batch, i);
      auto bytes = fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size());
      items.push_back(wire::CreatePutStartItem(fbb, bytes, 1));
    }
    FinishMessage(fbb, wire::CreatePutStart(fbb, fbb.CreateVector(items), 0x77));
    auto reply = conn.Call(fbb);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return reserved;
    bool refused = false;
    for (const wire::PutStartReplyItem* item :
         *reply->message()->body_as_PutStartReply()->items()) {
      absl::Status s = StatusFromWire(item->status());
      if (s.ok()) {
        ++reserved;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
        refused = true;
      }
    }
    if (refused) return reserved;
  }
  ADD_FAILURE() << "65,536 one-byte reservations and none refused";
  return reserved;
}

TEST_F(QuotaAttackTest, OneByteReservationsAreChargedTheirAllocationAndCannotHoldThePool) {
  auto victim = Connect(MakeToken("b.token", {"--prefix", "b/", "--quota", "16MiB"}));
  ASSERT_NE(victim, nullptr);
  PutPages(*victim, "b/", 8, kMiB);
  const uint64_t unit = platform::kAllocationAlignment;

  // With the token's reservation quota.
  std::string limited = MakeToken("c.token", {"--prefix", "c/", "--reservation-quota", "1MiB"});
  auto c_token = LoadCredentialFile(limited);
  ASSERT_TRUE(c_token.ok()) << c_token.status();
  ConnectionOptions c_options;
  c_options.credential = std::make_shared<Credential>(*c_token);
  auto c = Connection::Open(cluster_->directory_address(), c_options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(ReserveOneByteKeys(**c, "c/"), kMiB / unit);

  // With the pool's default share (half the pool), from a second tenant.
  std::string plain = MakeToken("d.token", {"--prefix", "d/"});
  auto d_token = LoadCredentialFile(plain);
  ASSERT_TRUE(d_token.ok()) << d_token.status();
  ConnectionOptions d_options;
  d_options.credential = std::make_shared<Credential>(*d_token);
  auto d = Connection::Open(cluster_->directory_address(), d_options);
  ASSERT_TRUE(d.ok()) << d.status();
  uint64_t reserved = ReserveOneByteKeys(**d, "d/");
  EXPECT_LE(reserved * unit, kPool / 2) << reserved << " one-byte reservations";
  EXPECT_GT(reserved, 0u);

  // The pool still serves: the victim's objects are there and the owner
  // puts (the floods' reservations stay until they expire).
  ExpectPages(*victim, "b/", 8, kMiB);
  auto owner = Connect(cluster_->key_file());
  ASSERT_NE(owner, nullptr);
  PutPages(*owner, "owner/", 8, kMiB);
  ExpectPages(*victim, "b/", 8, kMiB);
}

TEST_F(QuotaAttackTest, QuotaFlagsAreCheckedAndOldTokensStayValid) {
  testing::RunResult bad = testing::Run(
      Ctl({"token", "create", "--role", "client", "--prefix", "x/", "--quota", "lots"}));
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--quota"), std::string::npos) << bad.err;
  testing::RunResult no_prefix =
      testing::Run(Ctl({"token", "create", "--role", "client", "--quota", "1GiB"}));
  EXPECT_EQ(no_prefix.exit_code, 2) << no_prefix.err;
  EXPECT_NE(no_prefix.err.find("quotas belong to a tenant"), std::string::npos) << no_prefix.err;
  // A token written as before quotas (no quota fields) still connects.
  std::string old_token = MakeToken("old.token", {"--prefix", "old/"});
  std::ifstream in(old_token);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("unipool-token-v1 ", 0), 0u) << line;
  auto old_client = Connect(old_token);
  ASSERT_NE(old_client, nullptr);
  EXPECT_TRUE(old_client->Put("old/x", testing::PageBytes("old/x", 4096)).ok());
  // A holder that edits its quotas in the file is refused by the directory.
  auto raised = LoadCredentialFile(MakeToken("q.token", {"--prefix", "q/", "--quota", "1MiB"}));
  ASSERT_TRUE(raised.ok()) << raised.status();
  raised->quota.storage_bytes = kPool;
  ConnectionOptions options;
  options.credential = std::make_shared<Credential>(*raised);
  auto forged = Connection::Open(cluster_->directory_address(), options);
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kUnauthenticated) << forged.status();
}

}  // namespace
}  // namespace unipool
