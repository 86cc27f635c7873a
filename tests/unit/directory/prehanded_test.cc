// Pre-handed reservations (directory.h): reserved by a PutCommit for the
// client's next puts without a key, committed later with the key named, by
// that client only. Real RocksDB catalog in a private temp directory; time
// is a fake clock: nothing sleeps.
#include <filesystem>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "unipool/directory/directory.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t kClientA = 0xA11CE;
constexpr uint64_t kClientB = 0xB0B;

class PrehandedTest : public testing::DirectoryFixture {
 protected:
  void SetUp() override {
    DirectoryFixture::SetUp();
    NodeRegistration reg{"n1", "host", "127.0.0.1:7001", 1, 64 * MiB, {"tcp"}};
    auto registered = directory_->RegisterNode(reg);
    ASSERT_TRUE(registered.ok()) << registered.status();
  }

  // A committed put of `key` (PutStart + PutCommit) by `client`, asking for
  // `count` pre-handed reservations of `length` bytes; returns them.
  std::vector<Reservation> PutAsking(std::string_view key, uint64_t client, uint64_t length,
                                     uint32_t count) {
    PutRequest request{key, length};
    auto started = directory_->PutStart({&request, 1});
    EXPECT_TRUE(started.at(0).ok()) << started.at(0).status();
    if (!started.at(0).ok()) return {};
    CommitRequest commit{started.at(0)->put_id, 42};
    ReserveShape shape{length, 1, count};
    std::vector<Reservation> reserved;
    auto results =
        directory_->PutCommit({&commit, 1}, Committer{"", client}, {&shape, 1}, &reserved);
    EXPECT_TRUE(results.at(0).ok()) << results.at(0);
    return reserved;
  }
  absl::Status CommitAs(uint64_t client, uint64_t put_id, std::string_view key,
                        bool replace = false) {
    CommitRequest commit{put_id, 7};
    commit.key = key;
    commit.replace = replace;
    return directory_->PutCommit({&commit, 1}, Committer{"", client}).at(0);
  }
  uint64_t Pending() { return directory_->Status().pending_puts; }
};

TEST_F(PrehandedTest, ACommitHandsOutReservationsThatCommitWithTheirKey) {
  std::vector<Reservation> reserved = PutAsking("first", kClientA, MiB, 3);
  ASSERT_EQ(reserved.size(), 3u);
  EXPECT_EQ(Pending(), 3u);
  EXPECT_EQ(Used(), 4 * MiB) << "the object and three reservations";
  for (const Reservation& r : reserved) {
    EXPECT_EQ(r.location.length, MiB);
    ASSERT_EQ(r.location.copies.size(), 1u);
  }
  ASSERT_TRUE(CommitAs(kClientA, reserved[0].put_id, "second").ok());
  std::string_view key = "second";
  auto found = directory_->Lookup({&key, 1}).at(0);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->version, reserved[0].location.version);
  EXPECT_EQ(found->copies.at(0).offset, reserved[0].location.copies.at(0).offset);
  EXPECT_EQ(found->checksum, 7u);
  EXPECT_EQ(Pending(), 2u);
}

TEST_F(PrehandedTest, TheKeyIsCheckedAtCommit) {
  std::vector<Reservation> reserved = PutAsking("taken", kClientA, MiB, 4);
  ASSERT_EQ(reserved.size(), 4u);
  // An existing key without replace: refused, and the reservation released.
  absl::Status exists = CommitAs(kClientA, reserved[0].put_id, "taken");
  EXPECT_TRUE(absl::IsAlreadyExists(exists)) << exists;
  EXPECT_EQ(Pending(), 3u);
  // With replace: the object is replaced.
  ASSERT_TRUE(CommitAs(kClientA, reserved[1].put_id, "taken", /*replace=*/true).ok());
  std::string_view taken = "taken";
  EXPECT_EQ(directory_->Lookup({&taken, 1}).at(0)->version, reserved[1].location.version);
  // No key, or a bad one.
  EXPECT_TRUE(absl::IsInvalidArgument(CommitAs(kClientA, reserved[2].put_id, "")));
  EXPECT_TRUE(
      absl::IsInvalidArgument(CommitAs(kClientA, reserved[3].put_id, std::string(2000, 'k'))));
  EXPECT_EQ(Pending(), 0u);
  EXPECT_EQ(Used(), MiB) << "only the replacing object holds space";
}

TEST_F(PrehandedTest, AnotherClientsReservationIsRefused) {
  std::vector<Reservation> reserved = PutAsking("a", kClientA, MiB, 1);
  ASSERT_EQ(reserved.size(), 1u);
  absl::Status stolen = CommitAs(kClientB, reserved[0].put_id, "b");
  EXPECT_TRUE(absl::IsNotFound(stolen)) << stolen;
  EXPECT_TRUE(absl::IsNotFound(CommitAs(0, reserved[0].put_id, "b")));
  // Nor may another client abort it.
  directory_->PutAbort({&reserved[0].put_id, 1}, Committer{"", kClientB});
  EXPECT_EQ(Pending(), 1u) << "still A's";
  std::string_view b = "b";
  EXPECT_FALSE(directory_->Exists({&b, 1}).at(0));
  // A keyed reservation cannot be given a key at commit.
  PutRequest request{"c", MiB};
  auto started = directory_->PutStart({&request, 1});
  ASSERT_TRUE(started.at(0).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(CommitAs(kClientB, started.at(0)->put_id, "d")));
  // Its holder commits it.
  EXPECT_TRUE(CommitAs(kClientA, reserved[0].put_id, "b").ok());
}

TEST_F(PrehandedTest, APutIsCommittedAndAbortedOnlyByTheClientThatStartedIt) {
  PutRequest request{"victim", MiB};
  request.client_id = kClientA;
  auto started = directory_->PutStart({&request, 1});
  ASSERT_TRUE(started.at(0).ok()) << started.at(0).status();
  uint64_t id = started.at(0)->put_id;
  CommitRequest bogus{id, 0xbad};
  absl::Status stolen = directory_->PutCommit({&bogus, 1}, Committer{"", kClientB}).at(0);
  EXPECT_TRUE(absl::IsNotFound(stolen)) << stolen;
  EXPECT_NE(stolen.message().find("started by another client"), std::string::npos) << stolen;
  EXPECT_TRUE(absl::IsNotFound(directory_->PutCommit({&bogus, 1}).at(0))) << "nor with no id";
  directory_->PutAbort({&id, 1}, Committer{"", kClientB});
  EXPECT_EQ(Pending(), 1u) << "still A's";
  CommitRequest genuine{id, 42};
  ASSERT_TRUE(directory_->PutCommit({&genuine, 1}, Committer{"", kClientA}).at(0).ok());
  std::string_view key = "victim";
  EXPECT_EQ(directory_->Lookup({&key, 1}).at(0)->checksum, 42u);
  EXPECT_EQ(Pending(), 0u);
  EXPECT_EQ(Used(), MiB);
}

TEST_F(PrehandedTest, ExpiryAndAbortReclaimTheSpace) {
  std::vector<Reservation> reserved = PutAsking("a", kClientA, MiB, 2);
  ASSERT_EQ(reserved.size(), 2u);
  EXPECT_EQ(Used(), 3 * MiB);
  directory_->PutAbort({&reserved[0].put_id, 1}, Committer{"", kClientA});
  EXPECT_EQ(Used(), 2 * MiB);
  now_ += kPutTimeout + absl::Seconds(1);
  directory_->Tick();
  EXPECT_EQ(Pending(), 0u);
  EXPECT_EQ(Used(), MiB);
  EXPECT_TRUE(absl::IsNotFound(CommitAs(kClientA, reserved[1].put_id, "late")));
}

TEST_F(PrehandedTest, AfterARestartNobodyCommitsThemAndTheyExpire) {
  std::vector<Reservation> reserved = PutAsking("a", kClientA, MiB, 2);
  ASSERT_EQ(reserved.size(), 2u);
  ASSERT_TRUE(Reopen().ok());
  NodeRegistration reg{"n1", "host", "127.0.0.1:7001", 1, 64 * MiB, {"tcp"}};
  ASSERT_TRUE(directory_->RegisterNode(reg).ok());
  EXPECT_EQ(Pending(), 2u) << "kept: their holder may still be writing";
  EXPECT_EQ(Used(), 3 * MiB);
  EXPECT_TRUE(absl::IsNotFound(CommitAs(kClientA, reserved[0].put_id, "b")));
  now_ += kPutTimeout + absl::Seconds(1);
  directory_->Tick();
  EXPECT_EQ(Pending(), 0u);
  EXPECT_EQ(Used(), MiB);
  std::string_view b = "b";
  EXPECT_FALSE(directory_->Exists({&b, 1}).at(0));
}

TEST_F(PrehandedTest, APutStartReservationStaysItsClientsAcrossARestart) {
  PutRequest request{"victim", MiB};
  request.client_id = kClientA;
  request.owner = "tenant-a/";
  auto started = directory_->PutStart({&request, 1});
  ASSERT_TRUE(started.at(0).ok()) << started.at(0).status();
  uint64_t id = started.at(0)->put_id;
  ASSERT_TRUE(Reopen().ok());
  NodeRegistration reg{"n1", "host", "127.0.0.1:7001", 1, 64 * MiB, {"tcp"}};
  ASSERT_TRUE(directory_->RegisterNode(reg).ok());
  ASSERT_EQ(Pending(), 1u);
  CommitRequest bogus{id, 0xbad};
  EXPECT_TRUE(
      absl::IsNotFound(directory_->PutCommit({&bogus, 1}, Committer{"tenant-a/", kClientB}).at(0)))
      << "another client";
  EXPECT_TRUE(absl::IsNotFound(directory_->PutCommit({&bogus, 1}, Committer{"", kClientA}).at(0)))
      << "the same client id under another token";
  directory_->PutAbort({&id, 1}, Committer{"tenant-a/", kClientB});
  EXPECT_EQ(Pending(), 1u) << "still A's";
  // Its random id came back with it, and only that id commits it.
  for (uint64_t neighbour : {id - 1, id + 1}) {
    CommitRequest guess{neighbour, 0xbad};
    EXPECT_TRUE(absl::IsNotFound(
        directory_->PutCommit({&guess, 1}, Committer{"tenant-a/", kClientA}).at(0)));
  }
  CommitRequest genuine{id, 42};
  ASSERT_TRUE(directory_->PutCommit({&genuine, 1}, Committer{"tenant-a/", kClientA}).at(0).ok());
  std::string_view key = "victim";
  auto found = directory_->Lookup({&key, 1}).at(0);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->checksum, 42u);
  EXPECT_EQ(found->version, started.at(0)->location.version);
}

// Put ids are drawn at random (PendingPut::put_id), apart from versions,
// which still count up: knowing one's own ids tells nothing of the next
// client's, and a guess next to a victim's id commits nothing.
TEST_F(PrehandedTest, PutIdsAreRandomAndVersionsCountUp) {
  std::vector<PutRequest> requests;
  std::vector<std::string> keys;
  for (int i = 0; i < 64; ++i) keys.push_back("k" + std::to_string(i));
  for (const std::string& key : keys) requests.push_back({key, 4096, false, 1, "", kClientA});
  auto started = directory_->PutStart(requests);
  std::vector<Reservation> all = PutAsking("more", kClientA, 4096, 8);
  ASSERT_EQ(all.size(), 8u);
  for (auto& r : started) {
    ASSERT_TRUE(r.ok()) << r.status();
    all.push_back(*r);
  }
  std::set<uint64_t> ids;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_NE(all[i].put_id, all[i].location.version);
    EXPECT_TRUE(ids.insert(all[i].put_id).second) << "put id " << all[i].put_id << " twice";
  }
  // No id is within 2^20 of another (odds of that for random ids: 2^-35).
  for (auto it = std::next(ids.begin()); it != ids.end(); ++it) {
    EXPECT_GT(*it - *std::prev(it), uint64_t{1} << 20) << *std::prev(it) << " then " << *it;
  }
  for (size_t i = 1; i < started.size(); ++i) {
    EXPECT_EQ(started[i]->location.version, started[i - 1]->location.version + 1);
  }
  // B guesses next to A's ids: nothing of A's is touched.
  const Reservation& victim = *started[10];
  for (uint64_t guess : {victim.put_id - 1, victim.put_id + 1}) {
    CommitRequest bogus{guess, 0xbad};
    absl::Status s = directory_->PutCommit({&bogus, 1}, Committer{"", kClientB}).at(0);
    EXPECT_TRUE(absl::IsNotFound(s)) << s;
    directory_->PutAbort({&guess, 1}, Committer{"", kClientB});
  }
  EXPECT_EQ(Pending(), all.size());
  CommitRequest genuine{victim.put_id, 42};
  ASSERT_TRUE(directory_->PutCommit({&genuine, 1}, Committer{"", kClientA}).at(0).ok());
  std::string_view key = "k10";
  EXPECT_EQ(directory_->Lookup({&key, 1}).at(0)->version, victim.location.version);
}

// A reservation written before put ids were random (format 3: the put id is
// the version) is read back after the upgrade and commits with that id.
TEST_F(PrehandedTest, AReservationFromBeforeRandomIdsStillCommits) {
  directory_.reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), (dir_ / "catalog").string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string record(1, '\3');  // format 3, fields in schema/FORMATS.md order
    auto u64 = [&](uint64_t v) {
      for (int i = 0; i < 8; ++i) record.push_back(static_cast<char>(v >> (8 * i)));
    };
    u64(5);  // put id = version
    u64(3);
    record += "old";
    u64(1);  // node n1
    u64(0);
    u64(MiB);
    record.push_back(0);
    u64(static_cast<uint64_t>(absl::ToUnixMillis(now_ + kPutTimeout)));
    u64(0);  // no further copies
    u64(kClientA);
    u64(0);  // owner ""
    std::string key("p");
    for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(uint64_t{5} >> (8 * i)));
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, record).ok());
  }
  ASSERT_TRUE(Reopen().ok());
  NodeRegistration reg{"n1", "host", "127.0.0.1:7001", 1, 64 * MiB, {"tcp"}};
  ASSERT_TRUE(directory_->RegisterNode(reg).ok());
  EXPECT_EQ(Pending(), 1u);
  EXPECT_EQ(Used(), MiB);
  CommitRequest commit{5, 42};
  EXPECT_TRUE(absl::IsNotFound(directory_->PutCommit({&commit, 1}, Committer{"", kClientB}).at(0)));
  ASSERT_TRUE(directory_->PutCommit({&commit, 1}, Committer{"", kClientA}).at(0).ok());
  std::string_view old = "old";
  EXPECT_EQ(directory_->Lookup({&old, 1}).at(0)->version, 5u);
  // Later versions count on from above it.
  PutRequest next{"new", MiB};
  auto started = directory_->PutStart({&next, 1});
  ASSERT_TRUE(started.at(0).ok());
  EXPECT_GT(started.at(0)->location.version, 5u);
}

TEST_F(PrehandedTest, ReservationsAreCappedPerClientAndNeverEvict) {
  // The pool is 64 MiB: a client holds at most an eighth of it pre-handed.
  std::vector<Reservation> reserved = PutAsking("a", kClientA, MiB, 100);
  EXPECT_EQ(reserved.size(), 8u);
  std::vector<Reservation> more = PutAsking("b", kClientA, MiB, 100);
  EXPECT_TRUE(more.empty()) << "the cap is per client, across commits";
  EXPECT_EQ(PutAsking("c", kClientB, MiB, 100).size(), 8u) << "another client has its own";
  // Fill the pool with objects: nothing is evicted for a reservation.
  for (int i = 0; Used() + MiB <= 64 * MiB; ++i) {
    std::string key = "fill" + std::to_string(i);
    PutRequest request{key, MiB};
    auto started = directory_->PutStart({&request, 1});
    ASSERT_TRUE(started.at(0).ok());
    CommitRequest commit{started.at(0)->put_id, 1};
    ASSERT_TRUE(directory_->PutCommit({&commit, 1}).at(0).ok());
  }
  uint64_t objects = directory_->Status().objects;
  CommitRequest none{};
  ReserveShape shape{MiB, 1, 4};
  std::vector<Reservation> full;
  directory_->PutCommit({&none, 0}, Committer{"", 0xC}, {&shape, 1}, &full);
  EXPECT_TRUE(full.empty());
  EXPECT_EQ(directory_->Status().objects, objects) << "nothing evicted";
}

}  // namespace
}  // namespace unipool
