// A standby directory's copy of the leader's catalog: the same RocksDB
// folder as --db, to which the leader's write batches are applied in order.
// When this directory is elected it closes the store and opens its
// Directory on the folder, as a restart does.
//
// Fencing: a request of a term below the highest seen (from the leader's
// requests or from the election) is refused, so a deposed leader's writes
// are never taken, and so never counted towards its majority.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_REPLICATION_REPLICA_STORE_H_
#define UNIPOOL_REPLICATION_REPLICA_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "unipool/replication/position.h"

namespace unipool {

enum class ReplicaOp { kProbe, kBatch, kReset, kChunk, kMark };

class ReplicaStore {
 public:
  // Opens (creating if missing) the catalog folder `path`.
  static absl::StatusOr<std::unique_ptr<ReplicaStore>> Open(const std::string& path);
  ~ReplicaStore();

  // Applies one request of leader term `term` and returns the position
  // after it. FailedPrecondition for a term below the highest seen (the
  // sender is deposed); Unavailable once closed; OutOfRange for a batch that does not follow the
  // position (the leader then probes and sends a snapshot); InvalidArgument for a payload that is
  // not a RocksDB write batch.
  //   kProbe: nothing.   kBatch: write `seq` of `term`, `data` a WriteBatch.
  //   kReset: empties the catalog (position (0, 0)).
  //   kChunk: `data`, a WriteBatch of snapshot records, after a kReset.
  //   kMark:  the snapshot is complete at (term, seq).
  absl::StatusOr<ReplicationPosition> Apply(ReplicaOp op, int64_t term, uint64_t seq,
                                            std::string_view data);
  // A term seen elsewhere (our election read the leader key).
  void SawTerm(int64_t term);
  ReplicationPosition position();
  int64_t highest_term();
  // Closes the database (this directory was elected): every later Apply
  // fails Unavailable. Returns the final position.
  ReplicationPosition Close();

 private:
  ReplicaStore(std::unique_ptr<rocksdb::DB> db, ReplicationPosition position)
      : db_(std::move(db)), position_(position) {}
  absl::Status ApplyBatch(int64_t term, uint64_t seq, std::string_view data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Reset() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteRaw(std::string_view data, const ReplicationPosition* position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<rocksdb::DB> db_ ABSL_GUARDED_BY(mu_);  // null once closed
  ReplicationPosition position_ ABSL_GUARDED_BY(mu_);
  int64_t highest_term_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_REPLICATION_REPLICA_STORE_H_
