// The directory's durable state in RocksDB: objects, pending puts, nodes and
// the version counter. Every mutation goes through one WriteBatch, so a
// commit (object written + reservation deleted) is atomic on disk.
//
// Thread safety: a Catalog may be used from several threads (RocksDB is);
// the directory serialises mutations anyway.
#ifndef UNIPOOL_DIRECTORY_CATALOG_H_
#define UNIPOOL_DIRECTORY_CATALOG_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "unipool/directory/records.h"

namespace unipool {

// Everything the catalog holds, read once at start-up.
struct CatalogContents {
  std::vector<std::pair<std::string, ObjectRecord>> objects;
  std::vector<PendingPut> pending;
  std::vector<NodeRecord> nodes;
  std::vector<PinRecord> pins;
  std::vector<HeldExtent> held;
  uint64_t next_version = 1;
};

class CatalogBatch {
 public:
  void PutObject(std::string_view key, const ObjectRecord& record);
  void DeleteObject(std::string_view key);
  void PutPending(const PendingPut& record);
  void DeletePending(uint64_t put_id);
  void PutNode(const NodeRecord& record);
  void PutNextVersion(uint64_t next_version);
  void PutPin(const PinRecord& record);
  void DeletePin(const PinRecord& record);
  void PutHeld(const HeldExtent& record);
  void DeleteHeld(uint64_t id);
  bool empty() const { return batch_.Count() == 0; }

 private:
  friend class Catalog;
  rocksdb::WriteBatch batch_;
};

enum class Durability {
  kConfigured,    // fsync'ed when the catalog was opened with sync
  kProcessCrash,  // survives a crash of the process, not of the machine
};

class Catalog {
 public:
  // Opens (creating if missing) the database at `path`. With `sync`, every
  // Write is fsync'ed before it returns (survives power loss, not only a
  // crash of the process).
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& path, bool sync);

  absl::StatusOr<CatalogContents> Load() const;
  absl::Status Write(CatalogBatch& batch, Durability durability);

 private:
  Catalog(std::unique_ptr<rocksdb::DB> db, bool sync) : db_(std::move(db)), sync_(sync) {}
  std::unique_ptr<rocksdb::DB> db_;
  bool sync_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_CATALOG_H_
