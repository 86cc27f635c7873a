// FlashStore's writer thread: drains the write-behind queue into the head
// segment, opens a new head when it is full, and reclaims the oldest segment
// when the segments reach the capacity (second chance for pages read since
// they were written; the others dropped).
#include <filesystem>
#include <system_error>

#include "absl/strings/str_format.h"
#include "flash_store_internal.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"
#include "unipool/platform/file_io.h"

namespace unipool::flash {

void FlashStore::WriterLoop() {
  for (;;) {
    std::deque<std::shared_ptr<const Pending>> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything queued is written
      batch.swap(queue_);
    }
    for (const std::shared_ptr<const Pending>& item : batch) WriteItem(*item);
    if (options_.sync && head_fd_ != nullptr) {
      if (absl::Status synced = platform::SyncData(head_fd_->get()); !synced.ok()) {
        LogWarning("flash: segment %d not synced: %s", head_id_, synced.message());
      }
    }
    absl::MutexLock lock(&mu_);
    tickets_done_ = batch.back()->ticket;
  }
}

void FlashStore::WriteItem(const Pending& item) {
  uint64_t checksum = item.tombstone ? 0 : Checksum(item.bytes);
  uint64_t sequence = next_sequence_++;
  absl::Status rolled = absl::OkStatus();
  uint64_t need = kHeaderBytes + item.key.size() + item.bytes.size();
  if (head_fd_ == nullptr || head_end_ + need > options_.segment_bytes) rolled = RollHead();
  absl::StatusOr<uint64_t> offset = rolled.ok() ? Append(item, checksum, sequence) : rolled;
  absl::MutexLock lock(&mu_);
  if (!item.tombstone) queued_bytes_ -= item.bytes.size();
  if (!offset.ok()) {
    LogWarning("flash: %s of '%s' not written: %s", item.tombstone ? "drop" : "page", item.key,
               offset.status().message());
    if (item.tombstone) return;
    ++counters_.write_failures;
    auto queued = pending_.find(item.key);
    if (queued != pending_.end() && queued->second.get() == &item) pending_.erase(queued);
    return;
  }
  Segment& head = segments_.at(head_id_);
  head.keys.push_back(item.key);
  head.bytes = head_end_;
  if (item.tombstone) return;
  PublishLocked(item, head_id_, *offset, checksum, sequence);
}

// Appends one record to the head, which has room for it; returns where. A
// failed write is cut off again so the segment ends with whole records.
absl::StatusOr<uint64_t> FlashStore::Append(const Pending& item, uint64_t checksum,
                                            uint64_t sequence) {
  RecordHeader header;
  header.tombstone = item.tombstone;
  header.key_length = static_cast<uint32_t>(item.key.size());
  header.version = item.version;
  header.value_length = item.bytes.size();
  header.value_checksum = checksum;
  header.sequence = sequence;
  HeaderBytes encoded = EncodeRecordHeader(header, item.key);
  std::span<const uint8_t> pieces[] = {
      encoded, {reinterpret_cast<const uint8_t*>(item.key.data()), item.key.size()}, item.bytes};
  absl::Status written = platform::WriteAt(head_fd_->get(), head_end_, pieces);
  if (!written.ok()) {
    (void)platform::Truncate(head_fd_->get(), head_end_);
    return written;
  }
  uint64_t at = head_end_;
  head_end_ += header.span_bytes();
  return at;
}

// Seals the head and starts a new segment; then reclaims the oldest ones
// while more than the capacity's worth are live.
absl::Status FlashStore::RollHead() {
  if (options_.sync && head_fd_ != nullptr) (void)platform::SyncData(head_fd_->get());
  uint64_t id = head_id_ + 1;
  ASSIGN_OR_RETURN(Fd fd, platform::OpenDataFile(SegmentPath(id), /*create=*/true));
  RETURN_IF_ERROR(platform::Truncate(fd.get(), 0));
  head_fd_ = std::make_shared<Fd>(std::move(fd));
  head_id_ = id;
  head_end_ = 0;
  size_t live;
  {
    absl::MutexLock lock(&mu_);
    segments_[id] = Segment{head_fd_, 0, {}};
    live = segments_.size();
  }
  for (; live > live_segment_limit(); --live) ReclaimOldest();
  return absl::OkStatus();
}

void FlashStore::ReclaimOldest() {
  uint64_t id;
  std::vector<std::string> keys;
  {
    absl::MutexLock lock(&mu_);
    auto oldest = segments_.begin();
    if (oldest->first == head_id_) return;
    id = oldest->first;
    keys = std::move(oldest->second.keys);
  }
  // At most half a segment copied forward: the new head keeps room for new
  // pages, and a reclaim always frees space.
  uint64_t rewrite_budget = options_.segment_bytes / 2;
  for (const std::string& key : keys) ReclaimEntry(key, id, rewrite_budget);
  {
    absl::MutexLock lock(&mu_);
    segments_.erase(id);
  }
  std::error_code error;
  std::filesystem::remove(SegmentPath(id), error);
  if (error) LogWarning("flash: segment %d not removed: %s", id, error.message());
}

// One key listed in the reclaimed segment: dropped, or copied forward when it
// was read since it was written and the budget allows.
void FlashStore::ReclaimEntry(const std::string& key, uint64_t segment, uint64_t& rewrite_budget) {
  IndexEntry entry;
  {
    absl::MutexLock lock(&mu_);
    auto held = index_.find(key);
    if (held == index_.end() || held->second.segment != segment) return;  // moved or gone
    entry = held->second;
    uint64_t need = kHeaderBytes + key.size() + entry.length;
    if (!entry.referenced || need > rewrite_budget || head_end_ + need > options_.segment_bytes) {
      EraseLocked(key);
      ++counters_.lru_drops;
      return;
    }
    rewrite_budget -= need;
  }
  CopyForward(key, entry);
}

// Reads the page back (verified) and appends it to the head as a new record.
// False when it was lost instead (counted as bad, a read error or a drop).
bool FlashStore::CopyForward(const std::string& key, const IndexEntry& entry) {
  std::shared_ptr<Fd> fd;
  {
    absl::MutexLock lock(&mu_);
    fd = segments_.at(entry.segment).fd;
  }
  Pending copy;
  copy.key = key;
  copy.version = entry.version;
  copy.bytes.resize(entry.length);
  absl::StatusOr<size_t> got = platform::ReadAt(fd->get(), entry.value_offset, copy.bytes);
  absl::Status failure = !got.ok()              ? got.status()
                         : *got != entry.length ? absl::UnavailableError("short read")
                         : Checksum(copy.bytes) != entry.checksum
                             ? absl::DataLossError("checksum mismatch")
                             : absl::OkStatus();
  uint64_t sequence = next_sequence_++;
  absl::StatusOr<uint64_t> offset =
      failure.ok() ? Append(copy, entry.checksum, sequence) : absl::StatusOr<uint64_t>(failure);
  absl::MutexLock lock(&mu_);
  auto held = index_.find(key);
  if (held == index_.end() || held->second.sequence != entry.sequence) return false;
  if (!failure.ok()) {
    LoseLocked(key, entry.sequence, failure);
    return false;
  }
  if (!offset.ok()) {
    EraseLocked(key);
    ++counters_.lru_drops;
    return false;
  }
  IndexEntry& moved = held->second;
  moved.segment = head_id_;
  moved.offset = *offset;
  moved.value_offset = *offset + kHeaderBytes + key.size();
  moved.sequence = sequence;
  moved.referenced = false;
  Segment& head = segments_.at(head_id_);
  head.keys.push_back(key);
  head.bytes = head_end_;
  ++counters_.lru_kept;
  return true;
}

}  // namespace unipool::flash
