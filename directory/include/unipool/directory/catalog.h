// The directory's durable state in RocksDB: objects, pending puts, nodes and
// the version counter. Every mutation goes through one WriteBatch, so a
// commit (object written + reservation deleted) is atomic on disk.
//
// Durability: every Write is in RocksDB's log when it returns (it survives a
// crash of the process). What survives a crash of the machine depends on the
// SyncMode: AwaitDurable returns once a write is as durable as the mode
// promises an acknowledged commit is.
//
// Thread safety: thread-safe (RocksDB is). The directory serialises its
// writes under its commit gate (directory.h), with its map's mutex released,
// and waits for durability after releasing the gate too.
#ifndef UNIPOOL_DIRECTORY_CATALOG_H_
#define UNIPOOL_DIRECTORY_CATALOG_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "unipool/directory/group_sync.h"
#include "unipool/directory/records.h"
#include "unipool/pool_types.h"

namespace unipool {

// Everything the catalog holds, read once at start-up.
struct CatalogContents {
  std::vector<std::pair<std::string, ObjectRecord>> objects;
  std::vector<PendingPut> pending;
  std::vector<NodeRecord> nodes;
  std::vector<PinRecord> pins;
  std::vector<HeldExtent> held;
  uint64_t next_version = 1;
  // The pool's id (Catalog::PutPoolId); empty in a new catalog.
  std::string pool_id;
};

class CatalogBatch {
 public:
  void PutObject(std::string_view key, const ObjectRecord& record);
  void DeleteObject(std::string_view key);
  void PutPending(const PendingPut& record);
  void DeletePending(uint64_t put_id);
  void PutNode(const NodeRecord& record);
  void DeleteNode(NodeId node_id);
  void PutPoolId(std::string_view pool_id);
  void PutNextVersion(uint64_t next_version);
  void PutPin(const PinRecord& record);
  void DeletePin(const PinRecord& record);
  void PutHeld(const HeldExtent& record);
  void DeleteHeld(uint64_t id);
  // Tensor and model records (tensor/include/unipool/tensor/records.h),
  // encoded; the directory's TensorCatalog owns them.
  void PutTensor(std::string_view name, std::string_view record);
  void DeleteTensor(std::string_view name);
  void PutModel(std::string_view name, std::string_view record);
  void DeleteModel(std::string_view name);
  bool empty() const { return batch_.Count() == 0; }

 private:
  friend class Catalog;
  rocksdb::WriteBatch batch_;
};

// Ships the catalog's writes to standby directories (issue 24; the
// implementation is directory/replication/'s Replicator). The catalog calls
// it for every write, one write at a time, in the order RocksDB applied them.
//
// Thread safety: must be thread-safe (AwaitReplicated runs on many threads).
class CatalogReplication {
 public:
  virtual ~CatalogReplication() = default;
  // Before the write: the sequence number it will have, after adding to
  // `batch` whatever must be written with it (the replication's position).
  virtual uint64_t Stamp(rocksdb::WriteBatch& batch) = 0;
  // The write stamped `seq` is in the local log: ship it (`data` is the
  // batch's RocksDB representation).
  virtual void Append(uint64_t seq, std::string_view data) = 0;
  // Returns once write `seq` may be acknowledged (on a majority of the
  // directories, by a leader still in its term), or why it may not.
  virtual absl::Status AwaitReplicated(uint64_t seq) = 0;
  // Fills status.directories and status.unreplicated (Directory::Status).
  virtual void Describe(PoolState& status) = 0;
};

enum class SyncMode {
  // Acknowledged once in RocksDB's log; a background thread fsyncs the log
  // every sync_interval. A machine crash loses at most that much (Redis's
  // appendfsync everysec).
  kInterval,
  // Acknowledged once fsync'ed; commits waiting together share one fsync.
  kAlways,
};

struct CatalogOptions {
  // Default kInterval: no fsync on the request path.
  SyncMode sync = SyncMode::kInterval;
  // kInterval: the log is fsync'ed at least this often while it has unsynced
  // writes. Default 100 ms.
  absl::Duration sync_interval = absl::Milliseconds(100);
  // Ships every write to standby directories, and AwaitDurable waits for
  // it. Default null: a lone directory. Must outlive the catalog.
  CatalogReplication* replication = nullptr;
};

class Catalog {
 public:
  // Opens (creating if missing) the database at `path`. From then on the
  // catalog watches that folder (every sync_interval and before each write):
  // once it is removed or replaced, every Write fails FailedPrecondition,
  // saying so, since nothing written could survive a restart.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& path,
                                                       CatalogOptions options);
  ~Catalog();  // Stops the background fsync, after a last one.
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  absl::StatusOr<CatalogContents> Load() const;
  // Writes the batch atomically to RocksDB's log (not fsync'ed): it survives
  // a crash of this process. Returns the ticket AwaitDurable takes.
  absl::StatusOr<uint64_t> Write(CatalogBatch& batch);
  // Returns once the write of `ticket` (and every earlier one) is as durable
  // as an acknowledgement promises: fsync'ed with kAlways (one fsync shared
  // by concurrent callers), at once with kInterval. Call it with no lock held
  // that other requests need.
  absl::Status AwaitDurable(uint64_t ticket);

  SyncMode sync_mode() const { return options_.sync; }
  // fsyncs of the log so far.
  uint64_t syncs() { return group_sync_.syncs(); }
  // OK while the catalog's folder is the one opened; else why writes fail.
  absl::Status FolderCheck();

  // Every tensor (or model) record: (name, encoded record), by name.
  // Load() leaves them out; the TensorCatalog reads them at start-up.
  using NamedRecords = std::vector<std::pair<std::string, std::string>>;
  absl::StatusOr<NamedRecords> LoadTensors() const;
  absl::StatusOr<NamedRecords> LoadModels() const;
  // Calls `record` with every key and value, as of one moment (a snapshot
  // for a standby that is too far behind); stops at its first error.
  absl::Status Scan(const std::function<absl::Status(std::string_view key, std::string_view value)>&
                        record) const;

 private:
  // The folder's identity when opened (device and inode).
  struct FolderId {
    uint64_t device = 0;
    uint64_t inode = 0;
  };
  Catalog(std::unique_ptr<rocksdb::DB> db, std::string path, FolderId folder,
          CatalogOptions options);
  absl::Status SyncLog();
  void FlushLoop();
  absl::StatusOr<NamedRecords> LoadPrefix(char prefix) const;

  const CatalogOptions options_;
  const std::string path_;
  const FolderId folder_;
  absl::Mutex folder_mu_;
  absl::Status folder_lost_ ABSL_GUARDED_BY(folder_mu_);
  std::unique_ptr<rocksdb::DB> db_;
  GroupSync group_sync_;
  // With replication: writes one at a time, so that the replication's
  // sequence numbers and the group sync's tickets advance together
  // (seq = ticket + replication_offset_).
  absl::Mutex write_mu_;
  std::atomic<int64_t> replication_offset_{0};
  absl::Notification stop_;
  std::thread flusher_;  // fsyncs (kInterval) and watches the folder
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_CATALOG_H_
