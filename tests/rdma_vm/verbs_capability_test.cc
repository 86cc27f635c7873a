// UC RDMA in a pool with a cluster key, on Soft-RoCE inside the test VM: a UC
// get asks the node to RDMA-write a range into the client's memory
// (RdmaReadTo), and the node does so only with the directory's read
// capability for that range, exactly as for a TCP Read. An authenticated
// tenant with its own queue pair (a VerbsNodeIo of its own, so every verb is
// real) is refused without a capability, with a forged one, or with another
// range's, and no byte reaches its memory; a normal UC client keeps working,
// and one whose cached capability expired looks the key up again. The node
// side of the check is also attacked on the host, without RDMA
// (tests/security/capability_attack_test.cc).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/capability.h"
#include "unipool/pool_types.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/verbs/verbs_node_io.h"

namespace unipool::testing {
namespace {

constexpr uint64_t kPageBytes = 256 << 10;  // several staging-free RDMA messages

// The attacker's queue pairs must carry everything: a node that made it
// fall back to TCP would prove nothing about RDMA.
class NoFallback : public NodeIo {
 public:
  absl::Status Write(const std::string& address, std::span<const WriteOp>) override {
    return absl::InternalError("fell back to TCP for " + address);
  }
  absl::Status Read(const std::string& address, std::span<const ReadOp>) override {
    return absl::InternalError("fell back to TCP for " + address);
  }
  std::string_view name() const override { return "none"; }
};

class VerbsCapabilityTest : public ClusterTest {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("UNIPOOL_RDMA_DEVICE"), nullptr)
        << "no RDMA device named: run this test inside tests/rdma_vm/vm-run (ctest does)";
    // The library the other tests of this binary load, without damage: a
    // process loads its verbs library once, whichever test runs first.
    setenv("UNIPOOL_VERBS_LIBRARY", UNIPOOL_FAULTY_VERBS, 1);
  }
  void TearDown() override {
    ClusterTest::TearDown();
    unsetenv("UNIPOOL_VERBS_LIBRARY");
  }
  // A keyed one-node cluster and a UC client_ of it.
  void Start(std::vector<std::string> directory_flags, absl::Duration cache_ttl) {
    LocalClusterOptions options;
    options.nodes = 1;
    options.pool_size = 16 << 20;
    options.node_timeout = absl::Seconds(10);  // TCG is slow; heartbeats may lag
    options.directory_flags = std::move(directory_flags);
    ASSERT_NO_FATAL_FAILURE(StartCluster("verbs-caps", options, TestAuth::kClusterKey));
    ASSERT_NO_FATAL_FAILURE(ConnectClient(UcClient(cache_ttl)));
  }
  static ClientOptions UcClient(absl::Duration cache_ttl = absl::ZeroDuration()) {
    ClientOptions options;
    options.name = "uc-keyed";
    options.rdma = RdmaPolicy::kUC;
    options.io_timeout = absl::Seconds(120);
    options.location_cache_ttl = cache_ttl;
    return options;
  }
  // A UC transport of its own holding `credential` (no client SDK above it).
  std::unique_ptr<VerbsNodeIo> OwnQueuePairs(std::shared_ptr<const Credential> credential) {
    VerbsOptions verbs;
    verbs.devices = RdmaDeviceNames("", "");
    verbs.mode = RdmaMode::kUC;
    ConnectionOptions connection;
    connection.peer_name = "uc-attacker";
    connection.credential = std::move(credential);
    connection.io_timeout = absl::Seconds(120);
    auto io = VerbsNodeIo::Create(verbs, connection, &no_fallback_);
    EXPECT_TRUE(io.ok()) << io.status();
    return io.ok() ? std::move(*io) : nullptr;
  }
  std::shared_ptr<const Credential> TenantToken() {
    auto key = LoadCredentialFile(cluster_->key_file());
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return nullptr;
    auto token = NewToken(*key, wire::Role::Client, "tenant/");
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? std::make_shared<Credential>(*token) : nullptr;
  }
  // Where `key` lives, with the read capability of a fresh lookup.
  ObjectInfo Locate(const std::string& key) {
    auto info = admin_->Stat(key);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return {};
    EXPECT_EQ(info->copies.size(), 1u) << key;
    if (info->copies.size() != 1) return {};
    return *info;
  }

  NoFallback no_fallback_;
};

void ExpectRefused(const absl::Status& s, const std::string& why) {
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find(why), std::string::npos) << s;
}

TEST_F(VerbsCapabilityTest, RdmaReadToNeedsTheDirectorysCapabilityForTheRange) {
  ASSERT_NO_FATAL_FAILURE(Start({}, absl::ZeroDuration()));
  const std::string victim = "victim/secret";
  const std::string other = "victim/other";
  ASSERT_TRUE(client_->Put(victim, PageBytes(victim, kPageBytes)).ok());
  ASSERT_TRUE(client_->Put(other, PageBytes(other, kPageBytes)).ok());
  auto got = client_->Get(victim);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, PageBytes(victim, kPageBytes));
  EXPECT_EQ(client_->stats().transport, "rdma-uc");
  EXPECT_GT(client_->stats().rdma_requests, 0u);
  ObjectInfo where = Locate(victim);
  ObjectInfo where_other = Locate(other);
  ASSERT_FALSE(where.copies.empty() || where_other.copies.empty());
  const CopyLocation& copy = where.copies[0];
  const CopyLocation& elsewhere = where_other.copies[0];
  ASSERT_TRUE(copy.capability.present()) << "a keyed pool's lookups carry capabilities";

  // A tenant with its own queue pair, writing into its own registered memory:
  // whatever the node sent would land there directly.
  auto attacker = OwnQueuePairs(TenantToken());
  ASSERT_NE(attacker, nullptr);
  std::vector<uint8_t> stolen(2 * kPageBytes, 0);
  ASSERT_TRUE(attacker->RegisterBuffer(stolen.data(), stolen.size()).ok());
  uint64_t checksum = where.checksum;
  auto steal = [&](std::vector<const Capability*> capabilities) {
    std::vector<ReadOp> ops;
    for (size_t i = 0; i < capabilities.size(); ++i) {
      ops.push_back({copy.offset, std::span(stolen).subspan(i * kPageBytes, kPageBytes), checksum,
                     nullptr, capabilities[i]});
    }
    return attacker->Read(copy.node_address, ops);
  };
  const std::vector<uint8_t> nothing(stolen.size(), 0);
  ExpectRefused(steal({nullptr}), "needs a capability from the directory");
  Capability forged = copy.capability;
  forged.length = 16 << 20;  // the whole slab
  ExpectRefused(steal({&forged}), "not the directory's");
  ExpectRefused(steal({&elsewhere.capability}), "outside the capability's range");
  // A genuine capability does not carry a second range without one.
  ExpectRefused(steal({&copy.capability, nullptr}), "no capability from the directory");
  EXPECT_EQ(stolen, nothing) << "no byte reached the attacker's memory";
  EXPECT_EQ(attacker->fallback_requests(), 0u);
  EXPECT_GT(attacker->rdma_requests(), 0u);

  // The same queue pairs with the right capability do read: the refusals
  // above were the capability's, not the transport's.
  ASSERT_TRUE(steal({&copy.capability}).ok());
  EXPECT_TRUE(std::equal(stolen.begin(), stolen.begin() + kPageBytes,
                         PageBytes(victim, kPageBytes).begin()));
  EXPECT_TRUE(attacker->UnregisterBuffer(stolen.data()).ok());

  // Normal UC clients keep working, old and new.
  auto fresh = ConnectTo(*cluster_, UcClient());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  for (Client* client : {client_.get(), fresh->get()}) {
    for (const std::string& key : {victim, other}) {
      auto bytes = client->Get(key);
      ASSERT_TRUE(bytes.ok()) << key << ": " << bytes.status();
      EXPECT_EQ(*bytes, PageBytes(key, kPageBytes)) << key;
    }
    EXPECT_EQ(client->stats().transport, "rdma-uc");
    EXPECT_EQ(client->stats().tcp_requests, 0u);
  }
}

TEST_F(VerbsCapabilityTest, AnExpiredCapabilityIsRefusedAndTheUcClientLooksUpAgain) {
  // Read capabilities expire at once (plus the clock skew allowed); the
  // client trusts its cached locations for an hour.
  ASSERT_NO_FATAL_FAILURE(Start({"--read-capability-lifetime=1ms"}, absl::Hours(1)));
  const std::string key = "k/expiring";
  ASSERT_TRUE(client_->Put(key, PageBytes(key, kPageBytes)).ok());
  auto got = client_->Get(key);  // cached now, with its capability
  ASSERT_TRUE(got.ok()) << got.status();
  ObjectInfo where = Locate(key);  // no later than the cached one
  ASSERT_FALSE(where.copies.empty());
  const CopyLocation& copy = where.copies[0];
  absl::Time expired = absl::FromUnixMillis(copy.capability.expires_unix_ms) + kCapabilityClockSkew;
  ASSERT_TRUE(WaitUntil([&] { return absl::Now() > expired + absl::Milliseconds(100); },
                        absl::Seconds(60), absl::Milliseconds(100)));

  auto reader = OwnQueuePairs(TenantToken());
  ASSERT_NE(reader, nullptr);
  std::vector<uint8_t> bytes(kPageBytes);
  ReadOp op{copy.offset, bytes, where.checksum, nullptr, &copy.capability};
  ExpectRefused(reader->Read(copy.node_address, {&op, 1}), "expired");

  uint64_t stale_before = client_->stats().stale_cached_reads;
  got = client_->Get(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, PageBytes(key, kPageBytes));
  EXPECT_EQ(client_->stats().stale_cached_reads, stale_before + 1)
      << "the cached capability was refused, then a fresh lookup read it";
  EXPECT_EQ(client_->stats().transport, "rdma-uc");
}

}  // namespace
}  // namespace unipool::testing
