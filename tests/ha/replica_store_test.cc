// ReplicaStore, a standby's copy of the catalog: writes apply in order and
// only in order, a lower term is refused (fencing), a snapshot replaces
// everything, and the position survives a reopen.
#include "unipool/replication/replica_store.h"

#include "gtest/gtest.h"
#include "rocksdb/write_batch.h"
#include "unipool/testing/temp_dir.h"

namespace unipool {
namespace {

std::string Batch(const std::string& key, const std::string& value) {
  rocksdb::WriteBatch batch;
  batch.Put(key, value);
  return batch.Data();
}

std::string Read(const std::string& path, const std::string& key) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Options options;
  EXPECT_TRUE(rocksdb::DB::OpenForReadOnly(options, path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key, &value);
  return s.ok() ? value : "<" + s.ToString() + ">";
}

TEST(ReplicaStoreTest, WritesApplyInOrderAndTheirPositionSurvivesAReopen) {
  testing::TestDir dir("replica-store");
  std::string path = dir.File("db");
  {
    auto store = ReplicaStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->position(), (ReplicationPosition{0, 0}));
    // A term's first write follows whatever the leader had when elected.
    auto at = (*store)->Apply(ReplicaOp::kBatch, 5, 1, Batch("oa", "1"));
    ASSERT_TRUE(at.ok()) << at.status();
    EXPECT_EQ(*at, (ReplicationPosition{5, 1}));
    // A gap is refused, so the leader sends a snapshot instead.
    EXPECT_TRUE(
        absl::IsOutOfRange((*store)->Apply(ReplicaOp::kBatch, 5, 3, Batch("ob", "3")).status()));
    ASSERT_TRUE((*store)->Apply(ReplicaOp::kBatch, 5, 2, Batch("ob", "2")).ok());
    // A resend of a write it has is acknowledged and changes nothing.
    EXPECT_EQ(*(*store)->Apply(ReplicaOp::kBatch, 5, 1, Batch("oa", "changed")),
              (ReplicationPosition{5, 2}));
    // A payload that is not a write batch is refused.
    EXPECT_TRUE(absl::IsInvalidArgument(
        (*store)->Apply(ReplicaOp::kBatch, 5, 3, "not a write batch").status()));
  }
  auto reopened = ReplicaStore::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->position(), (ReplicationPosition{5, 2}));
  (*reopened)->Close();
  EXPECT_EQ(Read(path, "oa"), "1");
  EXPECT_EQ(Read(path, "ob"), "2");
}

TEST(ReplicaStoreTest, ALowerTermIsRefusedOnceAHigherOneWasSeen) {
  testing::TestDir dir("replica-store");
  auto store = ReplicaStore::Open(dir.File("db"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Apply(ReplicaOp::kBatch, 7, 1, Batch("oa", "1")).ok());
  // The election read a newer leader's key: the old leader is fenced.
  (*store)->SawTerm(9);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*store)->Apply(ReplicaOp::kBatch, 7, 2, Batch("ob", "2")).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition((*store)->Apply(ReplicaOp::kProbe, 7, 0, "").status()));
  // The new leader's first write, after a standby on the old one's history.
  auto at = (*store)->Apply(ReplicaOp::kBatch, 9, 1, Batch("oc", "3"));
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(*at, (ReplicationPosition{9, 1}));
  // Once elected itself (closed), it takes nothing, and says it is no
  // standby rather than refusing the sender's term.
  (*store)->Close();
  EXPECT_TRUE(absl::IsUnavailable((*store)->Apply(ReplicaOp::kProbe, 9, 0, "").status()));
}

TEST(ReplicaStoreTest, ASnapshotReplacesEverythingAndEndsAtItsMark) {
  testing::TestDir dir("replica-store");
  std::string path = dir.File("db");
  auto store = ReplicaStore::Open(path);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Apply(ReplicaOp::kBatch, 3, 1, Batch("ostale", "x")).ok());
  // A chunk only follows a reset.
  EXPECT_TRUE(
      absl::IsOutOfRange((*store)->Apply(ReplicaOp::kChunk, 4, 0, Batch("oa", "1")).status()));
  EXPECT_EQ(*(*store)->Apply(ReplicaOp::kReset, 4, 0, ""), (ReplicationPosition{0, 0}));
  EXPECT_EQ(*(*store)->Apply(ReplicaOp::kChunk, 4, 0, Batch("oa", "1")),
            (ReplicationPosition{0, 0}));
  EXPECT_EQ(*(*store)->Apply(ReplicaOp::kMark, 4, 17, ""), (ReplicationPosition{4, 17}));
  ASSERT_TRUE((*store)->Apply(ReplicaOp::kBatch, 4, 18, Batch("ob", "2")).ok());
  (*store)->Close();
  EXPECT_EQ(Read(path, "oa"), "1");
  EXPECT_EQ(Read(path, "ob"), "2");
  EXPECT_NE(Read(path, "ostale"), "x");
}

}  // namespace
}  // namespace unipool
