// FlashStore's index, rebuilt at open from the segment files: every header
// checked before use, the newest record of each key kept (a tombstone removes
// it), each kept page's bytes verified, a torn tail cut off.
#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "flash_store_internal.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/platform/file_io.h"

namespace unipool::flash {
namespace {

constexpr std::string_view kPrefix = "segment-";
constexpr std::string_view kSuffix = ".flash";
// Bytes checked at a time when verifying a page: the memory a scan uses,
// whatever length a header claims.
constexpr uint64_t kVerifyChunk = 1 << 20;

// The ids of the segment files in `dir`, oldest first; other files ignored.
absl::StatusOr<std::vector<uint64_t>> SegmentIds(const std::string& dir) {
  std::vector<uint64_t> ids;
  std::error_code error;
  for (const auto& file : std::filesystem::directory_iterator(dir, error)) {
    std::string name = file.path().filename().string();
    uint64_t id;
    if (name.size() > kPrefix.size() + kSuffix.size() && name.starts_with(kPrefix) &&
        name.ends_with(kSuffix) &&
        absl::SimpleAtoi(AbslView(std::string_view(name).substr(
                             kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size())),
                         &id)) {
      ids.push_back(id);
    }
  }
  if (error) {
    return absl::UnavailableError(absl::StrFormat("cannot list %s: %s", dir, error.message()));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

absl::StatusOr<FlashStore::ScanResult> FlashStore::ScanSegment(uint64_t id, int fd) {
  ScanResult result;
  ASSIGN_OR_RETURN(result.file_bytes, platform::FileSize(fd));
  std::vector<uint8_t> block(kHeaderBytes + kMaxRecordKeyBytes);
  bool in_damage = false;
  uint64_t offset = 0;
  while (offset + kHeaderBytes <= result.file_bytes) {
    size_t want = std::min<uint64_t>(block.size(), result.file_bytes - offset);
    ASSIGN_OR_RETURN(size_t got, platform::ReadAt(fd, offset, {block.data(), want}));
    std::string key;
    absl::StatusOr<RecordHeader> header =
        DecodeRecordHeader({block.data(), got}, result.file_bytes - offset, &key);
    if (!header.ok()) {
      in_damage = true;  // look for the next record on the next boundary
      offset += kRecordAlignment;
      continue;
    }
    if (in_damage) ++result.damaged;
    in_damage = false;
    result.records.push_back({std::move(key), *header, offset, true});
    result.end = offset + header->value_offset() + header->value_length;
    offset += header->span_bytes();
  }
  return result;
}

bool FlashStore::ValueIntact(int fd, uint64_t offset, uint64_t length, uint64_t checksum) {
  std::vector<uint8_t> chunk(std::min(length, kVerifyChunk));
  ChecksumBuilder builder;
  for (uint64_t done = 0; done < length;) {
    std::span<uint8_t> part(chunk.data(), std::min<uint64_t>(chunk.size(), length - done));
    absl::StatusOr<size_t> got = platform::ReadAt(fd, offset + done, part);
    if (!got.ok() || *got != part.size()) return false;
    builder.Update(part);
    done += part.size();
  }
  return builder.Finish() == checksum;
}

absl::Status FlashStore::Rebuild() {
  ASSIGN_OR_RETURN(std::vector<uint64_t> ids, SegmentIds(options_.dir));
  struct Newest {
    ScanResult::Found found;
    uint64_t segment;
  };
  absl::flat_hash_map<std::string, Newest> newest;
  uint64_t damaged = 0;
  absl::MutexLock lock(&mu_);
  for (uint64_t id : ids) {
    ASSIGN_OR_RETURN(Fd fd, platform::OpenDataFile(SegmentPath(id), /*create=*/false));
    ASSIGN_OR_RETURN(ScanResult scan, ScanSegment(id, fd.get()));
    damaged += scan.damaged;
    Segment& segment = segments_[id];
    segment.fd = std::make_shared<Fd>(std::move(fd));
    segment.bytes = scan.file_bytes;
    if (id == ids.back() && scan.file_bytes > scan.end) {
      counters_.torn_bytes = scan.file_bytes - scan.end;  // the head's torn tail
      RETURN_IF_ERROR(platform::Truncate(segment.fd->get(), scan.end));
      segment.bytes = scan.end;
    }
    head_end_ = (scan.end + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
    for (ScanResult::Found& found : scan.records) {
      next_sequence_ = std::max(next_sequence_, found.header.sequence + 1);
      segment.keys.push_back(found.key);
      Newest& slot = newest[found.key];
      if (slot.found.header.sequence < found.header.sequence) slot = {std::move(found), id};
    }
  }
  for (auto& [key, slot] : newest) {
    const RecordHeader& h = slot.found.header;
    if (h.tombstone) continue;
    uint64_t value_offset = slot.found.offset + h.value_offset();
    int fd = segments_.at(slot.segment).fd->get();
    if (options_.verify_on_open &&
        !ValueIntact(fd, value_offset, h.value_length, h.value_checksum)) {
      LogWarning("flash: page '%s' in segment %d failed its checksum at open: dropped", key,
                 slot.segment);
      ++counters_.bad_pages;
      continue;
    }
    index_[key] = IndexEntry{slot.segment,   slot.found.offset, value_offset, h.version,
                             h.value_length, h.value_checksum,  h.sequence,   false};
    ++counters_.objects;
    counters_.bytes += h.value_length;
  }
  counters_.recovered = counters_.objects;
  counters_.bad_pages += damaged;  // a damaged header loses the page it started
  counters_.bad_at_open = counters_.bad_pages;
  AdoptHead();
  LogInfo(
      "flash: %d pages (%s) found intact in %s (%d segment files of up to %s); %d bad "
      "pages dropped, %s of torn tail cut; I/O by %s",
      counters_.objects, FormatSize(counters_.bytes), options_.dir, segments_.size(),
      FormatSize(options_.segment_bytes), counters_.bad_pages, FormatSize(counters_.torn_bytes),
      platform::FileIoEngine());
  return absl::OkStatus();
}

// Makes the newest segment the head, and drops the oldest ones beyond the
// capacity (when it was lowered since they were written).
void FlashStore::AdoptHead() {
  if (!segments_.empty()) {
    head_id_ = segments_.rbegin()->first;
    head_fd_ = segments_.rbegin()->second.fd;
  }
  while (segments_.size() > live_segment_limit()) {
    auto oldest = segments_.begin();
    for (const std::string& key : oldest->second.keys) {
      auto held = index_.find(key);
      if (held == index_.end() || held->second.segment != oldest->first) continue;
      EraseLocked(key);
      ++counters_.lru_drops;
    }
    std::error_code error;
    std::filesystem::remove(SegmentPath(oldest->first), error);
    segments_.erase(oldest);
  }
}

}  // namespace unipool::flash
