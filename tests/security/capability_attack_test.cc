// The data path obeys the directory, attacked by real processes on loopback
// in a pool with a cluster key: a node reads, writes or copies a range of its
// slab (or RDMA-writes it to a UC client, or checksums it for one) only
// with the directory's capability for exactly that range and operation
// (unexpired), and a put is committed only by the client that
// started it. Normal clients (TCP and shared memory) keep working
// throughout, and one whose capability expired looks the key up again.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/capability.h"
#include "unipool/common/checksum.h"
#include "unipool/common/connection.h"
#include "unipool/common/protocol.h"
#include "unipool/platform/net.h"
#include "unipool/pool_types.h"
#include "unipool/testing/keyed_cluster.h"
#include "unipool/testing/raw_requests.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

constexpr uint64_t kValueBytes = 50000;

using testing::ExpectRefused;
using testing::OneCapability;
using testing::RawRead;
using testing::RawReservation;
using testing::RawWrite;

class CapabilityAttackTest : public testing::KeyedClusterTest {
 protected:
  void StartCluster(int nodes, std::vector<std::string> directory_flags = {}) {
    LocalClusterOptions options;
    options.nodes = nodes;
    options.pool_size = 64 << 20;
    options.directory_flags = std::move(directory_flags);
    ASSERT_NO_FATAL_FAILURE(StartKeyedCluster("caps", options));
    key_path_ = cluster_->key_file();
  }

  // A client of the pool; `shm` false: every byte over TCP.
  std::unique_ptr<Client> Connect(const std::string& key_file, bool shm,
                                  absl::Duration cache_ttl = absl::ZeroDuration()) {
    ClientOptions options;
    options.shm = shm;
    options.location_cache_ttl = cache_ttl;
    return KeyedClusterTest::Connect(key_file, options);
  }
  // Where `key` lives, with the read capabilities of a fresh lookup.
  ObjectInfo Locate(const std::string& key) {
    auto admin = ClusterAdmin();
    if (admin == nullptr) return {};
    auto info = admin->Stat(key);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : ObjectInfo{};
  }

  std::string key_path_;
};

// A raw PutStart of `keys` (4 KiB each) as client `client`.
std::vector<RawReservation> RawPutStart(Connection& conn, const std::vector<std::string>& keys,
                                        uint64_t client) {
  auto started = testing::RawPutStart(conn, keys, 4096, client);
  EXPECT_TRUE(started.ok()) << started.status();
  return started.ok() ? *started : std::vector<RawReservation>{};
}

// A raw PutCommit of `put_ids` as client `client`; one status per id.
std::vector<absl::Status> RawCommit(Connection& conn, const std::vector<uint64_t>& put_ids,
                                    uint64_t client) {
  return testing::RawPutCommit(conn, put_ids, /*checksum=*/0xbad, client);
}

// A raw RdmaReadTo asking the node to RDMA-write [offset, +length) to an
// address and rkey of ours, with `capability` if given.
absl::Status RawRdmaReadTo(Connection& conn, uint64_t offset, uint64_t length,
                           const Capability* capability) {
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range range(offset, length);
  auto ranges = fbb.CreateVectorOfStructs(&range, 1);
  auto addrs = fbb.CreateVector(std::vector<uint64_t>{0x10000});
  auto capabilities = OneCapability(fbb, capability);
  FinishMessage(fbb,
                wire::CreateRdmaReadTo(fbb, ranges, addrs, /*rkey=*/7, /*imm=*/1, capabilities));
  return conn.Call(fbb).status();
}

// A raw RdmaVerify: does [offset, +length) hash to `checksum`?
absl::Status RawRdmaVerify(Connection& conn, uint64_t offset, uint64_t length, uint64_t checksum,
                           const Capability* capability) {
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range range(offset, length);
  auto ranges = fbb.CreateVectorOfStructs(&range, 1);
  auto checksums = fbb.CreateVector(std::vector<uint64_t>{checksum});
  auto capabilities = OneCapability(fbb, capability);
  FinishMessage(fbb, wire::CreateRdmaVerify(fbb, ranges, checksums, capabilities));
  return conn.Call(fbb).status();
}

TEST_F(CapabilityAttackTest, RawReadsAndWritesNeedTheDirectorysCapability) {
  StartCluster(1);
  auto owner = Connect(key_path_, /*shm=*/false);
  auto same_host = Connect(key_path_, /*shm=*/true);
  ASSERT_TRUE(owner && same_host);
  const std::string victim = "victim/secret";
  ASSERT_TRUE(owner->Put(victim, testing::PageBytes(victim, kValueBytes)).ok());
  ObjectInfo where = Locate(victim);
  ASSERT_EQ(where.copies.size(), 1u);
  const CopyLocation& copy = where.copies[0];
  ASSERT_TRUE(copy.capability.present()) << "a keyed pool's lookups carry capabilities";

  // A tenant (authenticated, another prefix) reads and writes the node raw
  // (a new connection each time: the client drops one that got an Error).
  auto attacker = [&] { return Open(copy.node_address, Token(wire::Role::Client, "tenant/")); };
  std::vector<uint8_t> stolen(kValueBytes, 0);
  ExpectRefused(RawRead(*attacker(), copy.offset, stolen, nullptr),
                "needs a capability from the directory");
  EXPECT_EQ(stolen, std::vector<uint8_t>(kValueBytes, 0)) << "no byte came back";
  std::vector<uint8_t> garbage(20, 0xee);
  ExpectRefused(RawWrite(*attacker(), copy.offset, garbage, nullptr),
                "needs a capability from the directory");
  // A capability that is not the directory's (made up, or one field changed).
  Capability forged = copy.capability;
  forged.length = 64 << 20;
  ExpectRefused(RawRead(*attacker(), 0, stolen, &forged), "not the directory's");

  // A leaked read capability covers its range, for reading, and no more.
  std::vector<uint8_t> read(kValueBytes);
  ASSERT_TRUE(RawRead(*attacker(), copy.offset, read, &copy.capability).ok());
  EXPECT_EQ(read, testing::PageBytes(victim, kValueBytes));
  std::vector<uint8_t> beyond(4096);
  ExpectRefused(RawRead(*attacker(), copy.offset + kValueBytes, beyond, &copy.capability),
                "outside the capability's range");
  ExpectRefused(RawWrite(*attacker(), copy.offset, garbage, &copy.capability), "grants read");

  // The stored object is intact, over TCP and shared memory.
  for (Client* client : {owner.get(), same_host.get()}) {
    auto got = client->Get(victim);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, testing::PageBytes(victim, kValueBytes));
  }
  EXPECT_EQ(same_host->stats().transport, "shm");
  for (int i = 0; i < 5; ++i) {
    std::string key = absl::StrFormat("victim/after-%d", i);
    ASSERT_TRUE(owner->Put(key, testing::PageBytes(key, 10000)).ok());
    ASSERT_TRUE(same_host->Put(key + "-shm", testing::PageBytes(key, 10000)).ok());
    EXPECT_EQ(*same_host->Get(key), testing::PageBytes(key, 10000));
    EXPECT_EQ(*owner->Get(key + "-shm"), testing::PageBytes(key, 10000));
  }
}

// The UC RDMA requests (RdmaReadTo: the node RDMA-writes a range to the
// client; RdmaVerify: the node says whether a range hashes to a checksum)
// obey the same capabilities as a Read, checked before anything else: on
// this host's TCP-only node, a request the check lets through fails only
// for want of RDMA. The same attacks over real verbs run in the Soft-RoCE
// VM (tests/rdma_vm/verbs_capability_test.cc).
TEST_F(CapabilityAttackTest, UcRdmaRequestsNeedTheDirectorysCapability) {
  StartCluster(1);
  auto owner = Connect(key_path_, /*shm=*/false);
  ASSERT_NE(owner, nullptr);
  const std::string victim = "victim/rdma";
  const std::string other = "victim/rdma-other";
  ASSERT_TRUE(owner->Put(victim, testing::PageBytes(victim, kValueBytes)).ok());
  ASSERT_TRUE(owner->Put(other, testing::PageBytes(other, kValueBytes)).ok());
  ObjectInfo where = Locate(victim);
  ObjectInfo elsewhere = Locate(other);
  ASSERT_EQ(where.copies.size(), 1u);
  ASSERT_EQ(elsewhere.copies.size(), 1u);
  const CopyLocation& copy = where.copies[0];
  auto attacker = [&] { return Open(copy.node_address, Token(wire::Role::Client, "tenant/")); };

  ExpectRefused(RawRdmaReadTo(*attacker(), copy.offset, kValueBytes, nullptr),
                "needs a capability from the directory");
  Capability forged = copy.capability;
  forged.expires_unix_ms += 3600 * 1000;
  ExpectRefused(RawRdmaReadTo(*attacker(), copy.offset, kValueBytes, &forged),
                "not the directory's");
  ExpectRefused(
      RawRdmaReadTo(*attacker(), copy.offset, kValueBytes, &elsewhere.copies[0].capability),
      "outside the capability's range");
  // One log line naming the request, the range and why.
  std::string log = cluster_->work_dir() + "/" + cluster_->node_name(0) + ".log";
  EXPECT_TRUE(testing::WaitForFileText(log, "refused RdmaReadTo from 127.0.0.1")) << log;
  for (const char* why : {"every range needs a capability", "outside the capability's range"}) {
    EXPECT_TRUE(testing::WaitForFileText(
        log, absl::StrFormat("read of [%u, +%u) refused: %s", copy.offset, kValueBytes, why)))
        << why;
  }
  // The genuine capability passes the check: only RDMA is missing here.
  absl::Status allowed = RawRdmaReadTo(*attacker(), copy.offset, kValueBytes, &copy.capability);
  EXPECT_EQ(allowed.code(), absl::StatusCode::kFailedPrecondition) << allowed;
  EXPECT_NE(allowed.message().find("serves no RDMA"), std::string::npos) << allowed;

  // No checksum oracle on someone else's page: RdmaVerify needs the put's
  // own write capability.
  uint64_t guess = Checksum(testing::PageBytes(victim, kValueBytes));
  ExpectRefused(RawRdmaVerify(*attacker(), copy.offset, kValueBytes, guess, nullptr),
                "needs a capability from the directory");
  ExpectRefused(RawRdmaVerify(*attacker(), copy.offset, kValueBytes, guess, &copy.capability),
                "the capability grants read");
  EXPECT_EQ(*owner->Get(victim), testing::PageBytes(victim, kValueBytes));
}

TEST_F(CapabilityAttackTest, AnExpiredCapabilityIsRefusedAndTheClientLooksUpAgain) {
  StartCluster(1, {"--read-capability-lifetime=1ms"});
  // The client trusts its cached locations for an hour: its cached
  // capability expires long before.
  auto client = Connect(key_path_, /*shm=*/false, absl::Hours(1));
  ASSERT_NE(client, nullptr);
  const std::string key = "k/expiring";
  ASSERT_TRUE(client->Put(key, testing::PageBytes(key, kValueBytes)).ok());
  ASSERT_EQ(*client->Get(key), testing::PageBytes(key, kValueBytes));  // cached now
  ObjectInfo where = Locate(key);
  ASSERT_EQ(where.copies.size(), 1u);
  auto reader = Open(where.copies[0].node_address, Token(wire::Role::Client, ""));
  ASSERT_NE(reader, nullptr);
  std::vector<uint8_t> bytes(kValueBytes);
  absl::Status refused;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (refused.ok() && absl::Now() < deadline) {
    refused = RawRead(*reader, where.copies[0].offset, bytes, &where.copies[0].capability);
    if (refused.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  ExpectRefused(refused, "expired");

  uint64_t stale_before = client->stats().stale_cached_reads;
  auto got = client->Get(key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, testing::PageBytes(key, kValueBytes));
  EXPECT_EQ(client->stats().stale_cached_reads, stale_before + 1)
      << "the cached capability was refused, then a fresh lookup read it";
}

TEST_F(CapabilityAttackTest, ANodeCopiesOnlyWhereTheDirectorySaid) {
  StartCluster(1);
  auto owner = Connect(key_path_, /*shm=*/false);
  ASSERT_NE(owner, nullptr);
  const std::string victim = "victim/copied";
  ASSERT_TRUE(owner->Put(victim, testing::PageBytes(victim, kValueBytes)).ok());
  ObjectInfo where = Locate(victim);
  ASSERT_EQ(where.copies.size(), 1u);

  // The attacker's listener, where it wants the victim's bytes sent.
  Fd listener = platform::Socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::string target = absl::StrFormat("127.0.0.1:%d", ntohs(address.sin_port));

  auto copy_request = [&](const Capability* capability) {
    flatbuffers::FlatBufferBuilder fbb;
    wire::Range range(where.copies[0].offset, kValueBytes);
    auto ranges = fbb.CreateVectorOfStructs(&range, 1);
    auto to = fbb.CreateString(target);
    auto offsets = fbb.CreateVector(std::vector<uint64_t>{0});
    auto capabilities = OneCapability(fbb, capability);
    FinishMessage(fbb, wire::CreateCopy(fbb, ranges, to, offsets, capabilities));
    return fbb;
  };
  // A client token may not order copies at all; an admin token (or anyone)
  // without the directory's copy capability for this target is refused too,
  // and so is a read capability passed off as one.
  const std::string& node = where.copies[0].node_address;
  EXPECT_EQ(Open(node, Token(wire::Role::Client, ""))->Call(copy_request(nullptr)).status().code(),
            absl::StatusCode::kPermissionDenied);
  ExpectRefused(Open(node, Token(wire::Role::Admin, ""))->Call(copy_request(nullptr)).status(),
                "needs a capability");
  ExpectRefused(Open(node, Token(wire::Role::Admin, ""))
                    ->Call(copy_request(&where.copies[0].capability))
                    .status(),
                "the capability grants read");
  // Nothing connected to the listener.
  ASSERT_TRUE(platform::SetNonBlocking(listener.get(), true));
  EXPECT_LT(::accept(listener.get(), nullptr, nullptr), 0) << "the node dialled the attacker";
  EXPECT_EQ(*owner->Get(victim), testing::PageBytes(victim, kValueBytes));
}

TEST_F(CapabilityAttackTest, AStolenPutIdIsRefusedAndTheVictimsPutsSucceed) {
  StartCluster(1);
  auto victim = Connect(TokenFile("victim.token", wire::Role::Client, "victim/"), false);
  ASSERT_NE(victim, nullptr);
  auto attacker = Open(cluster_->directory_address(), Token(wire::Role::Client, "attacker/"));
  ASSERT_NE(attacker, nullptr);
  // The attacker learns where put ids are (its own PutStart), then commits
  // the ids after it with a bogus checksum while the victim puts.
  flatbuffers::FlatBufferBuilder start;
  std::string own = "attacker/probe";
  auto item = wire::CreatePutStartItem(
      start, start.CreateVector(reinterpret_cast<const uint8_t*>(own.data()), own.size()), 4096);
  FinishMessage(start, wire::CreatePutStart(start, start.CreateVector(&item, 1), 0x0a77ac3e));
  auto started = attacker->Call(start);
  ASSERT_TRUE(started.ok()) << started.status();
  uint64_t first = started->message()->body_as_PutStartReply()->items()->Get(0)->put_id();
  // (Put ids are random: nothing is to be found there any more.)

  std::atomic<bool> victim_done{false};
  std::atomic<uint64_t> stolen_commits{0};
  std::thread thief([&] {
    while (!victim_done.load()) {
      flatbuffers::FlatBufferBuilder fbb;
      std::vector<flatbuffers::Offset<wire::PutCommitItem>> items;
      for (uint64_t id = first + 1; id < first + 200; ++id) {
        items.push_back(wire::CreatePutCommitItem(fbb, id, /*checksum=*/0xbad));
      }
      FinishMessage(fbb, wire::CreatePutCommit(fbb, fbb.CreateVector(items), 0x0a77ac3e));
      auto reply = attacker->Call(fbb);
      if (!reply.ok()) return;
      for (const wire::Status* s : *reply->message()->body_as_PutCommitReply()->items()) {
        stolen_commits += StatusFromWire(s).ok();
      }
    }
  });
  for (int i = 0; i < 20; ++i) {
    std::string key = absl::StrFormat("victim/%d", i);
    EXPECT_TRUE(victim->Put(key, testing::PageBytes(key, 20000)).ok()) << key;
  }
  victim_done = true;
  thief.join();
  EXPECT_EQ(stolen_commits.load(), 0u);
  for (int i = 0; i < 20; ++i) {
    std::string key = absl::StrFormat("victim/%d", i);
    auto got = victim->Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    EXPECT_EQ(*got, testing::PageBytes(key, 20000));
  }
}

// Put ids are random and bound to the client that started them: a client's
// successive ids are nowhere near each other, and guessing next to a
// victim's id (or naming the id itself) from another client commits nothing,
// while the victim's put still commits.
TEST_F(CapabilityAttackTest, PutIdsAreRandomAndTheirNeighboursCommitNothing) {
  StartCluster(1);
  auto victim = Open(cluster_->directory_address(), Token(wire::Role::Client, "victim/"));
  auto attacker = Open(cluster_->directory_address(), Token(wire::Role::Client, "attacker/"));
  ASSERT_NE(victim, nullptr);
  ASSERT_NE(attacker, nullptr);
  constexpr uint64_t kVictim = 0x71c714;
  constexpr uint64_t kAttacker = 0x0a77ac3e;
  std::vector<RawReservation> own;
  for (int round = 0; round < 2; ++round) {  // in one batch, then another
    std::vector<std::string> keys;
    for (int i = 0; i < 8; ++i) keys.push_back(absl::StrFormat("attacker/%d-%d", round, i));
    for (const RawReservation& r : RawPutStart(*attacker, keys, kAttacker)) own.push_back(r);
  }
  ASSERT_EQ(own.size(), 16u);
  for (size_t i = 1; i < own.size(); ++i) {
    EXPECT_EQ(own[i].version, own[i - 1].version + 1) << "versions still count up";
    uint64_t gap = own[i].put_id > own[i - 1].put_id ? own[i].put_id - own[i - 1].put_id
                                                     : own[i - 1].put_id - own[i].put_id;
    // Random 64-bit ids: this close by chance once in 2^40.
    EXPECT_GT(gap, uint64_t{1} << 24) << own[i - 1].put_id << " then " << own[i].put_id;
  }

  std::vector<RawReservation> put = RawPutStart(*victim, {"victim/page"}, kVictim);
  ASSERT_EQ(put.size(), 1u);
  const uint64_t id = put[0].put_id;
  for (const absl::Status& s : RawCommit(*attacker, {id - 1, id + 1, id}, kAttacker)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  }
  // Nor with the victim's client id under the attacker's token.
  for (const absl::Status& s : RawCommit(*attacker, {id}, kVictim)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  }
  std::vector<absl::Status> committed = RawCommit(*victim, {id}, kVictim);
  ASSERT_EQ(committed.size(), 1u);
  EXPECT_TRUE(committed[0].ok()) << committed[0];
  ObjectInfo info = Locate("victim/page");
  EXPECT_EQ(info.version, put[0].version);
  EXPECT_EQ(info.checksum, 0xbadu);
}

}  // namespace
}  // namespace unipool
