// FlashStore's calls: the queue in front of the writer, reads, drops and the
// index they share (flash_writer.cc writes, flash_rebuild.cc rebuilds).
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_format.h"
#include "flash_store_internal.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/platform/file_io.h"

namespace unipool::flash {
namespace {

// A page needs its header, its key and its bytes in one segment.
bool Fits(uint64_t segment_bytes, std::string_view key, uint64_t length) {
  return kHeaderBytes + key.size() + length <= segment_bytes;
}

absl::Status CheckOptions(const FlashOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("the flash folder is empty");
  if (options.segment_bytes < 2 * kRecordAlignment ||
      options.segment_bytes % kRecordAlignment != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("a flash segment of %d bytes is not a multiple of 4 KiB of at least 8 KiB",
                        options.segment_bytes));
  }
  if (options.capacity / options.segment_bytes < 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("flash of %s holds fewer than 3 segments of %s",
                        FormatSize(options.capacity), FormatSize(options.segment_bytes)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<FlashStore>> FlashStore::Open(FlashOptions options) {
  RETURN_IF_ERROR(CheckOptions(options));
  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrFormat("cannot create flash folder %s: %s", options.dir, error.message()));
  }
  std::unique_ptr<FlashStore> store(new FlashStore(std::move(options)));
  RETURN_IF_ERROR(store->Rebuild());
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

FlashStore::~FlashStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

uint64_t FlashStore::live_segment_limit() const {
  return options_.capacity / options_.segment_bytes - 1;
}

std::string FlashStore::SegmentPath(uint64_t id) const {
  return absl::StrFormat("%s/segment-%016d.flash", options_.dir, id);
}

absl::Status FlashStore::Demote(std::string_view key, uint64_t version,
                                std::span<const uint8_t> bytes) {
  if (key.empty() || key.size() > kMaxRecordKeyBytes ||
      !Fits(options_.segment_bytes, key, bytes.size())) {
    absl::MutexLock lock(&mu_);
    ++counters_.refused;
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' (%d bytes) does not fit a flash segment of %s", key, bytes.size(),
                        FormatSize(options_.segment_bytes)));
  }
  {
    absl::MutexLock lock(&mu_);
    auto held = index_.find(AbslView(key));
    if (held != index_.end() && held->second.version == version &&
        !pending_.contains(AbslView(key))) {
      held->second.referenced = true;
      ++counters_.demotions;
      ++counters_.already_on_flash;
      return absl::OkStatus();
    }
    if (stopping_ || queued_bytes_ + bytes.size() > options_.queue_bytes) {
      ++counters_.refused;
      return absl::ResourceExhaustedError("the flash write queue is full");
    }
    queued_bytes_ += bytes.size();  // reserved before the copy, outside the lock
  }
  auto item = std::make_shared<Pending>();
  item->key.assign(key);
  item->version = version;
  item->bytes.assign(bytes.begin(), bytes.end());
  absl::MutexLock lock(&mu_);
  item->ticket = ++tickets_issued_;
  pending_[item->key] = item;
  queue_.push_back(std::move(item));
  ++counters_.demotions;
  return absl::OkStatus();
}

absl::StatusOr<FlashEntry> FlashStore::Find(std::string_view key) const {
  absl::MutexLock lock(&mu_);
  if (auto queued = pending_.find(AbslView(key)); queued != pending_.end()) {
    return FlashEntry{queued->second->key, queued->second->version, queued->second->bytes.size(),
                      0};
  }
  auto held = index_.find(AbslView(key));
  if (held == index_.end())
    return absl::NotFoundError(absl::StrFormat("'%s' is not on flash", key));
  const IndexEntry& e = held->second;
  return FlashEntry{std::string(key), e.version, e.length, e.checksum};
}

absl::StatusOr<size_t> FlashStore::LocateLocked(std::string_view key, uint64_t version,
                                                std::span<uint8_t> dest, ReadFor purpose,
                                                OnDisk* disk) {
  if (auto queued = pending_.find(AbslView(key)); queued != pending_.end()) {
    const Pending& item = *queued->second;
    if (item.version == version) {
      if (dest.size() < item.bytes.size()) {
        return absl::OutOfRangeError(absl::StrFormat("'%s' is %d bytes, the buffer %d", key,
                                                     item.bytes.size(), dest.size()));
      }
      std::memcpy(dest.data(), item.bytes.data(), item.bytes.size());
      CountHitLocked(purpose);
      return item.bytes.size();
    }
  }
  auto held = index_.find(AbslView(key));
  auto segment = held == index_.end() ? segments_.end() : segments_.find(held->second.segment);
  if (held == index_.end() || held->second.version != version || segment == segments_.end()) {
    ++counters_.misses;
    return absl::NotFoundError(absl::StrFormat("'%s' version %d is not on flash", key, version));
  }
  if (dest.size() < held->second.length) {
    return absl::OutOfRangeError(
        absl::StrFormat("'%s' is %d bytes, the buffer %d", key, held->second.length, dest.size()));
  }
  held->second.referenced = true;
  disk->entry = held->second;
  disk->fd = segment->second.fd;
  return held->second.length;
}

absl::StatusOr<size_t> FlashStore::FinishRead(std::string_view key, const OnDisk& disk,
                                              std::span<uint8_t> dest,
                                              const absl::StatusOr<size_t>& got, ReadFor purpose) {
  const IndexEntry& entry = disk.entry;
  absl::Status failure;
  if (!got.ok()) {
    failure = got.status();
  } else if (*got != entry.length) {
    failure =
        absl::UnavailableError(absl::StrFormat("short read: %d of %d bytes", *got, entry.length));
  } else if (Checksum(dest.first(entry.length)) != entry.checksum) {
    failure = absl::DataLossError("checksum mismatch");
  }
  absl::MutexLock lock(&mu_);
  if (!failure.ok()) {
    LoseLocked(key, entry.sequence, failure);
    return failure;
  }
  CountHitLocked(purpose);
  return entry.length;
}

void FlashStore::CountHitLocked(ReadFor purpose) {
  if (purpose == ReadFor::kVerify) return;
  ++counters_.hits;
  if (purpose == ReadFor::kPromotion) ++counters_.promotions;
}

absl::StatusOr<size_t> FlashStore::Read(std::string_view key, uint64_t version,
                                        std::span<uint8_t> dest, ReadFor purpose) {
  OnDisk disk;
  absl::StatusOr<size_t> located;
  {
    absl::MutexLock lock(&mu_);
    located = LocateLocked(key, version, dest, purpose, &disk);
  }
  if (!located.ok() || disk.fd == nullptr) return located;  // a miss, or served from the queue
  std::span<uint8_t> into = dest.first(disk.entry.length);
  return FinishRead(key, disk, dest,
                    platform::ReadAt(disk.fd->get(), disk.entry.value_offset, into), purpose);
}

void FlashStore::ReadMany(std::span<FlashRead> reads, ReadFor purpose) {
  std::vector<OnDisk> disks(reads.size());
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < reads.size(); ++i) {
      reads[i].result =
          LocateLocked(reads[i].key, reads[i].version, reads[i].dest, purpose, &disks[i]);
    }
  }
  std::vector<platform::ReadRequest> requests;
  std::vector<size_t> which;
  for (size_t i = 0; i < reads.size(); ++i) {
    if (!reads[i].result.ok() || disks[i].fd == nullptr) continue;
    requests.push_back({disks[i].fd->get(), disks[i].entry.value_offset,
                        reads[i].dest.first(disks[i].entry.length)});
    which.push_back(i);
  }
  platform::ReadMany(requests);
  for (size_t r = 0; r < requests.size(); ++r) {
    FlashRead& read = reads[which[r]];
    read.result = FinishRead(read.key, disks[which[r]], read.dest, requests[r].result, purpose);
  }
}

absl::Status FlashStore::Drop(std::string_view key) {
  absl::MutexLock lock(&mu_);
  bool queued = pending_.erase(AbslView(key)) > 0;
  bool held = index_.contains(AbslView(key));
  if (!queued && !held) return absl::NotFoundError(absl::StrFormat("'%s' is not on flash", key));
  if (held) {
    EraseLocked(std::string(key));
    ++counters_.drops;
  }
  // The tombstone goes through the queue, after any record of the key.
  auto tombstone = std::make_shared<Pending>();
  tombstone->key.assign(key);
  tombstone->tombstone = true;
  tombstone->ticket = ++tickets_issued_;
  queue_.push_back(std::move(tombstone));
  return absl::OkStatus();
}

std::vector<FlashEntry> FlashStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<FlashEntry> out;
  out.reserve(index_.size() + pending_.size());
  for (const auto& [key, e] : index_) {
    if (!pending_.contains(AbslView(key))) out.push_back({key, e.version, e.length, e.checksum});
  }
  for (const auto& [key, item] : pending_)
    out.push_back({key, item->version, item->bytes.size(), 0});
  return out;
}

FlashCounters FlashStore::counters() const {
  absl::MutexLock lock(&mu_);
  FlashCounters out = counters_;
  out.queued = queue_.size();
  out.segments = segments_.size();
  out.disk_bytes = 0;
  for (const auto& [id, segment] : segments_) out.disk_bytes += segment.bytes;
  return out;
}

void FlashStore::Flush() {
  absl::MutexLock lock(&mu_);
  uint64_t ticket = tickets_issued_;
  auto done = [this, ticket]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return tickets_done_ >= ticket; };
  mu_.Await(absl::Condition(&done));
}

void FlashStore::PublishLocked(const Pending& item, uint64_t segment, uint64_t offset,
                               uint64_t checksum, uint64_t sequence) {
  auto queued = pending_.find(item.key);
  if (queued == pending_.end() || queued->second.get() != &item) return;  // dropped or superseded
  pending_.erase(queued);
  ++counters_.written;
  if (index_.contains(item.key)) {
    EraseLocked(item.key);
    ++counters_.replaced;
  }
  IndexEntry& entry = index_[item.key];
  entry.segment = segment;
  entry.offset = offset;
  entry.value_offset = offset + kHeaderBytes + item.key.size();
  entry.version = item.version;
  entry.length = item.bytes.size();
  entry.checksum = checksum;
  entry.sequence = sequence;
  ++counters_.objects;
  counters_.bytes += item.bytes.size();
}

void FlashStore::EraseLocked(const std::string& key) {
  auto held = index_.find(AbslView(key));
  if (held == index_.end()) return;
  --counters_.objects;
  counters_.bytes -= held->second.length;
  index_.erase(held);
}

void FlashStore::LoseLocked(std::string_view key, uint64_t sequence, const absl::Status& why) {
  LogWarning("flash: page '%s' lost, read as a miss: %s", key, why.message());
  auto held = index_.find(AbslView(key));
  if (held == index_.end() || held->second.sequence != sequence) return;  // already changed
  if (absl::IsDataLoss(why)) {
    ++counters_.bad_pages;
  } else {
    ++counters_.read_errors;
  }
  EraseLocked(std::string(key));
}

}  // namespace unipool::flash
