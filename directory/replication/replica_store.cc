#include "unipool/replication/replica_store.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "rocksdb/write_batch.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrFormat("replica catalog %s: %s", what, s.ToString()));
}

std::string Show(ReplicationPosition p) {
  return absl::StrFormat("(term %d, write %u)", p.term, p.seq);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReplicaStore>> ReplicaStore::Open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.keep_log_file_num = 4;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("cannot open catalog at %s: %s", path, s.ToString()));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  ReplicationPosition position;
  s = db->Get(rocksdb::ReadOptions(), rocksdb::Slice(kPositionKey.data(), kPositionKey.size()),
              &value);
  if (s.ok()) {
    position = DecodePosition(value).value_or(ReplicationPosition{});
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read of the position");
  }
  return std::unique_ptr<ReplicaStore>(new ReplicaStore(std::move(db), position));
}

ReplicaStore::~ReplicaStore() { Close(); }

ReplicationPosition ReplicaStore::Close() {
  absl::MutexLock lock(&mu_);
  if (db_ != nullptr) {
    (void)db_->SyncWAL();
    db_.reset();
  }
  return position_;
}

void ReplicaStore::SawTerm(int64_t term) {
  absl::MutexLock lock(&mu_);
  highest_term_ = std::max(highest_term_, term);
}

ReplicationPosition ReplicaStore::position() {
  absl::MutexLock lock(&mu_);
  return position_;
}

int64_t ReplicaStore::highest_term() {
  absl::MutexLock lock(&mu_);
  return highest_term_;
}

absl::StatusOr<ReplicationPosition> ReplicaStore::Apply(ReplicaOp op, int64_t term, uint64_t seq,
                                                        std::string_view data) {
  absl::MutexLock lock(&mu_);
  if (db_ == nullptr) {
    // Not a refusal of the sender's term: this directory was elected once
    // and has not yet ended itself (deposed leaders exit), or is stopping.
    return absl::UnavailableError("this directory is not a standby (it leads, or is stopping)");
  }
  if (term < highest_term_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "term %d is over: a leader of term %d was elected since", term, highest_term_));
  }
  highest_term_ = term;
  switch (op) {
    case ReplicaOp::kProbe:
      break;
    case ReplicaOp::kBatch:
      RETURN_IF_ERROR(ApplyBatch(term, seq, data));
      break;
    case ReplicaOp::kReset:
      RETURN_IF_ERROR(Reset());
      break;
    case ReplicaOp::kChunk:
      if (position_ != ReplicationPosition{}) {
        return absl::OutOfRangeError("a snapshot chunk without a reset before it");
      }
      RETURN_IF_ERROR(WriteRaw(data, nullptr));
      break;
    case ReplicaOp::kMark: {
      ReplicationPosition mark{term, seq};
      RETURN_IF_ERROR(WriteRaw("", &mark));
      position_ = mark;
      break;
    }
  }
  return position_;
}

absl::Status ReplicaStore::ApplyBatch(int64_t term, uint64_t seq, std::string_view data) {
  if (position_.term == term && position_.seq >= seq) return absl::OkStatus();  // a resend
  // The first write of a term follows whatever the leader had when it was
  // elected; the leader sends it only to a standby it found at that very
  // position (else it sends a snapshot).
  bool follows =
      (position_.term == term && position_.seq + 1 == seq) || (position_.term < term && seq == 1);
  if (!follows) {
    return absl::OutOfRangeError(
        absl::StrFormat("write %u of term %d does not follow %s", seq, term, Show(position_)));
  }
  ReplicationPosition next{term, seq};
  RETURN_IF_ERROR(WriteRaw(data, &next));
  position_ = next;
  return absl::OkStatus();
}

absl::Status ReplicaStore::Reset() {
  // Every catalog key starts with an ASCII prefix (FORMATS.md).
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(
      FromRocks(batch.DeleteRange(rocksdb::Slice(""), rocksdb::Slice("\xff", 1)), "reset"));
  batch.Put(rocksdb::Slice(kPositionKey.data(), kPositionKey.size()),
            EncodePosition(ReplicationPosition{}));
  RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "reset"));
  position_ = ReplicationPosition{};
  return absl::OkStatus();
}

// Walks a batch's records without applying them: it parses, and has the
// count its header says (RocksDB checks both).
class BatchCheck : public rocksdb::WriteBatch::Handler {
 public:
  void Put(const rocksdb::Slice&, const rocksdb::Slice&) override {}
  void Delete(const rocksdb::Slice&) override {}
};

absl::Status ReplicaStore::WriteRaw(std::string_view data, const ReplicationPosition* position) {
  // The peer proved the cluster key, but its bytes are still checked before
  // anything reaches the log (a bad record there would stop the next open).
  constexpr size_t kBatchHeaderBytes = 12;
  if (!data.empty() && data.size() < kBatchHeaderBytes) {
    return absl::InvalidArgumentError("a replicated batch shorter than its header");
  }
  rocksdb::WriteBatch batch =
      data.empty() ? rocksdb::WriteBatch() : rocksdb::WriteBatch(std::string(data));
  BatchCheck check;
  if (rocksdb::Status s = batch.Iterate(&check); !s.ok()) {
    return absl::InvalidArgumentError("a replicated batch that is not a RocksDB write batch: " +
                                      s.ToString());
  }
  if (position != nullptr) {
    RETURN_IF_ERROR(FromRocks(batch.Put(rocksdb::Slice(kPositionKey.data(), kPositionKey.size()),
                                        EncodePosition(*position)),
                              "write"));
  }
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (s.IsCorruption() || s.IsInvalidArgument()) {
    return absl::InvalidArgumentError("a replicated batch that is not a RocksDB write batch: " +
                                      s.ToString());
  }
  return FromRocks(s, "write");
}

}  // namespace unipool
