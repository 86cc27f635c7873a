#include "unipool/directory/catalog.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// Key prefixes (schema/FORMATS.md).
constexpr char kObjectPrefix = 'o';
constexpr char kPendingPrefix = 'p';
constexpr char kNodePrefix = 'n';
constexpr char kPinPrefix = 'k';
constexpr char kHeldPrefix = 'h';
constexpr char kTensorPrefix = 't';
constexpr char kModelPrefix = 'M';
constexpr std::string_view kNextVersionKey = "m:next_version";
constexpr std::string_view kPoolIdKey = "m:pool_id";

std::string BigEndianKey(char prefix, uint64_t id) {
  std::string key(1, prefix);
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(id >> (8 * i)));
  return key;
}

std::string PrefixedKey(char prefix, std::string_view key) {
  std::string k(1, prefix);
  k.append(key);
  return k;
}

std::string ObjectKey(std::string_view key) { return PrefixedKey(kObjectPrefix, key); }

// 'k', then 'k' for a key pin or 'p' for a prefix pin, then the key bytes.
std::string PinKey(const PinRecord& pin) {
  std::string k(1, kPinPrefix);
  k.push_back(pin.prefix ? 'p' : 'k');
  k.append(pin.key);
  return k;
}

std::string EncodeU64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrFormat("rocksdb %s: %s", what, s.ToString()));
}

}  // namespace

void CatalogBatch::PutObject(std::string_view key, const ObjectRecord& record) {
  batch_.Put(ObjectKey(key), EncodeObject(record));
}
void CatalogBatch::DeleteObject(std::string_view key) { batch_.Delete(ObjectKey(key)); }
void CatalogBatch::PutPending(const PendingPut& record) {
  batch_.Put(BigEndianKey(kPendingPrefix, record.put_id), EncodePendingPut(record));
}
void CatalogBatch::DeletePending(uint64_t put_id) {
  batch_.Delete(BigEndianKey(kPendingPrefix, put_id));
}
void CatalogBatch::PutNode(const NodeRecord& record) {
  batch_.Put(BigEndianKey(kNodePrefix, record.node_id), EncodeNode(record));
}
void CatalogBatch::DeleteNode(NodeId node_id) { batch_.Delete(BigEndianKey(kNodePrefix, node_id)); }
void CatalogBatch::PutPoolId(std::string_view pool_id) {
  batch_.Put(std::string(kPoolIdKey), std::string(pool_id));
}
void CatalogBatch::PutNextVersion(uint64_t next_version) {
  batch_.Put(std::string(kNextVersionKey), EncodeU64(next_version));
}

void CatalogBatch::PutPin(const PinRecord& record) {
  batch_.Put(PinKey(record), EncodePin(record));
}
void CatalogBatch::DeletePin(const PinRecord& record) { batch_.Delete(PinKey(record)); }
void CatalogBatch::PutHeld(const HeldExtent& record) {
  batch_.Put(BigEndianKey(kHeldPrefix, record.id), EncodeHeldExtent(record));
}
void CatalogBatch::DeleteHeld(uint64_t id) { batch_.Delete(BigEndianKey(kHeldPrefix, id)); }
void CatalogBatch::PutTensor(std::string_view name, std::string_view record) {
  batch_.Put(PrefixedKey(kTensorPrefix, name), record);
}
void CatalogBatch::DeleteTensor(std::string_view name) {
  batch_.Delete(PrefixedKey(kTensorPrefix, name));
}
void CatalogBatch::PutModel(std::string_view name, std::string_view record) {
  batch_.Put(PrefixedKey(kModelPrefix, name), record);
}
void CatalogBatch::DeleteModel(std::string_view name) {
  batch_.Delete(PrefixedKey(kModelPrefix, name));
}

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path,
                                                       CatalogOptions options) {
  if (options.sync == SyncMode::kInterval && options.sync_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the catalog's fsync interval must be positive");
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  // Small values, point lookups only at start-up: defaults are fine; keep
  // the log from growing without bound on a long-running directory.
  db_options.keep_log_file_num = 4;
  // The memtable is only ever written while the directory runs (Load reads
  // the catalog once, at start-up): an unsorted vector, sorted once when it
  // is flushed or read, costs ~3 us of CPU per write against ~8 us for the
  // default skip list (measured with RocksDB 7.8 on the directory's batches),
  // and every put writes twice. A vector takes one writer at a time: with
  // concurrent memtable writes off, RocksDB inserts one write group at a
  // time (the directory's gate and the tensor catalog's mutex are apart).
  db_options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  db_options.allow_concurrent_memtable_write = false;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("cannot open catalog at %s: %s", path, s.ToString()));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::UnavailableError(
        absl::StrFormat("cannot stat catalog folder %s: %s", path, std::strerror(errno)));
  }
  return std::unique_ptr<Catalog>(
      new Catalog(std::move(db), path, {static_cast<uint64_t>(st.st_dev), st.st_ino}, options));
}

Catalog::Catalog(std::unique_ptr<rocksdb::DB> db, std::string path, FolderId folder,
                 CatalogOptions options)
    : options_(options),
      path_(std::move(path)),
      folder_(folder),
      db_(std::move(db)),
      group_sync_([this] { return SyncLog(); }) {
  // Also watches the folder in kAlways mode (it then fsyncs nothing).
  flusher_ = std::thread([this] { FlushLoop(); });
}

absl::Status Catalog::FolderCheck() {
  absl::MutexLock lock(&folder_mu_);
  if (!folder_lost_.ok()) return folder_lost_;
  struct stat st {};
  std::string why;
  if (stat(path_.c_str(), &st) != 0) {
    why = absl::StrFormat("was removed (%s)", std::strerror(errno));
  } else if (static_cast<uint64_t>(st.st_dev) != folder_.device || st.st_ino != folder_.inode) {
    why = "was replaced by another folder";
  } else {
    return absl::OkStatus();
  }
  folder_lost_ = absl::FailedPreconditionError(absl::StrFormat(
      "the catalog folder %s %s while the directory ran: writes are refused, since nothing "
      "written could survive a restart; stop the directory and restore --db",
      path_, why));
  LogError("%s", folder_lost_.message());
  return folder_lost_;
}

Catalog::~Catalog() {
  stop_.Notify();
  if (flusher_.joinable()) flusher_.join();
  if (absl::Status s = group_sync_.SyncAll(); !s.ok()) {
    LogError("catalog: last fsync of the log failed: %s", s.ToString());
  }
}

absl::Status Catalog::SyncLog() { return FromRocks(db_->SyncWAL(), "fsync of the log"); }

void Catalog::FlushLoop() {
  absl::Duration interval =
      options_.sync == SyncMode::kInterval ? options_.sync_interval : absl::Milliseconds(100);
  while (!stop_.WaitForNotificationWithTimeout(interval)) {
    if (!FolderCheck().ok()) continue;
    if (options_.sync != SyncMode::kInterval || !group_sync_.HasUnsynced()) continue;
    if (absl::Status s = group_sync_.SyncAll(); !s.ok()) {
      LogError("catalog: background fsync of the log failed: %s", s.ToString());
    }
  }
}

absl::StatusOr<CatalogContents> Catalog::Load() const {
  CatalogContents contents;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    std::string_view value(it->value().data(), it->value().size());
    if (key.empty()) continue;
    switch (key[0]) {
      case kObjectPrefix: {
        ASSIGN_OR_RETURN(ObjectRecord record, DecodeObject(value));
        contents.objects.emplace_back(std::string(key.substr(1)), record);
        break;
      }
      case kPendingPrefix: {
        ASSIGN_OR_RETURN(PendingPut record, DecodePendingPut(value));
        contents.pending.push_back(std::move(record));
        break;
      }
      case kNodePrefix: {
        ASSIGN_OR_RETURN(NodeRecord record, DecodeNode(value));
        contents.nodes.push_back(std::move(record));
        break;
      }
      case kPinPrefix: {
        ASSIGN_OR_RETURN(PinRecord record, DecodePin(value));
        contents.pins.push_back(std::move(record));
        break;
      }
      case kHeldPrefix: {
        ASSIGN_OR_RETURN(HeldExtent record, DecodeHeldExtent(value));
        contents.held.push_back(record);
        break;
      }
      default:
        if (key == kPoolIdKey) {
          contents.pool_id = std::string(value);
        } else if (key == kNextVersionKey && value.size() == 8) {
          uint64_t v = 0;
          for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(value[i]);
          contents.next_version = v;
        }
        break;
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  return contents;
}

absl::StatusOr<Catalog::NamedRecords> Catalog::LoadTensors() const {
  return LoadPrefix(kTensorPrefix);
}
absl::StatusOr<Catalog::NamedRecords> Catalog::LoadModels() const {
  return LoadPrefix(kModelPrefix);
}

absl::StatusOr<Catalog::NamedRecords> Catalog::LoadPrefix(char prefix) const {
  NamedRecords records;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(&prefix, 1)); it->Valid() && it->key()[0] == prefix; it->Next()) {
    records.emplace_back(std::string(it->key().data() + 1, it->key().size() - 1),
                         it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  return records;
}

absl::StatusOr<uint64_t> Catalog::Write(CatalogBatch& batch) {
  rocksdb::WriteOptions options;
  options.sync = false;  // AwaitDurable fsyncs, once for many writes
  RETURN_IF_ERROR(FolderCheck());
  CatalogReplication* replication = options_.replication;
  if (replication == nullptr) {
    RETURN_IF_ERROR(FromRocks(db_->Write(options, &batch.batch_), "write"));
    return group_sync_.Written();
  }
  absl::MutexLock lock(&write_mu_);
  uint64_t seq = replication->Stamp(batch.batch_);
  RETURN_IF_ERROR(FromRocks(db_->Write(options, &batch.batch_), "write"));
  uint64_t ticket = group_sync_.Written();
  replication_offset_.store(static_cast<int64_t>(seq) - static_cast<int64_t>(ticket));
  replication->Append(seq, std::string_view(batch.batch_.Data()));
  return ticket;
}

absl::Status Catalog::AwaitDurable(uint64_t ticket) {
  // A write may have raced with the folder's removal: never acknowledge it.
  RETURN_IF_ERROR(FolderCheck());
  if (options_.sync == SyncMode::kAlways) RETURN_IF_ERROR(group_sync_.WaitDurable(ticket));
  if (options_.replication == nullptr || ticket == 0) return absl::OkStatus();
  return options_.replication->AwaitReplicated(ticket + replication_offset_.load());
}

absl::Status Catalog::Scan(
    const std::function<absl::Status(std::string_view key, std::string_view value)>& record) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RETURN_IF_ERROR(record(std::string_view(it->key().data(), it->key().size()),
                           std::string_view(it->value().data(), it->value().size())));
  }
  return FromRocks(it->status(), "scan");
}

}  // namespace unipool
