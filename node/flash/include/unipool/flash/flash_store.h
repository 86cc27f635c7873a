// The node's flash tier: pages kept in a log of large segment files on the
// node's SSD (--ssd-dir), each with its checksum, found again after a crash
// or a reboot by scanning the segments. docs/flash.md has the format and the
// policies; record.h the bytes of one record.
//
//   - Demote copies a page into a bounded write-behind queue and returns;
//     one writer thread appends it to the newest segment. A full queue
//     refuses the page (counted): the caller never waits for the disk.
//   - Read verifies the page's XXH3 before it returns OK: a short read, an
//     I/O error or a checksum mismatch is a miss (the page is dropped,
//     counted, and logged in one line), never wrong bytes.
//   - When the segments reach the capacity, the oldest one is reclaimed:
//     pages read since they were written get a second chance (copied to the
//     newest segment, up to half a segment's worth), the others are dropped.
//     That is an approximation of LRU that never reads a page it drops.
//
// Thread safety: every method is thread-safe. Reads run in parallel with each
// other and with the writer; the index is under one mutex, never held during
// I/O.
#ifndef UNIPOOL_FLASH_FLASH_STORE_H_
#define UNIPOOL_FLASH_FLASH_STORE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "unipool/platform/fd.h"

namespace unipool::flash {

struct FlashOptions {
  std::string dir;        // REQUIRED: the segments' folder; created when missing
  uint64_t capacity = 0;  // REQUIRED: bytes of disk to use, at least 3 segments
  // Size of each segment file. Larger: fewer files and rarer reclaims, but a
  // reclaim drops more at once. A page longer than a segment (minus its
  // header and key) is never demoted. One segment of the capacity is kept
  // spare for reclaiming, so the files never exceed `capacity`.
  uint64_t segment_bytes = 256ull << 20;
  // Page bytes waiting for the writer. Beyond it a demotion is refused
  // (counted) rather than waited for: a burst of evictions never blocks a put.
  uint64_t queue_bytes = 256ull << 20;
  // At open, read every page and check its checksum, dropping (and counting)
  // those that fail, so that only intact pages are listed. false: headers
  // only (fast), and a damaged page is found at its first read.
  bool verify_on_open = true;
  // fdatasync the segment after each batch the writer drains: pages survive
  // a power loss or a reboot too, not only a crash of the process.
  bool sync = true;
};

// Since Open (bytes, objects, queued: now). Pages on flash add up:
//   objects = recovered + written - replaced - lru_drops - drops
//             - (bad_pages - bad_at_open) - read_errors
struct FlashCounters {
  uint64_t bytes = 0;       // page bytes on flash (headers and padding not counted)
  uint64_t objects = 0;     // pages on flash
  uint64_t disk_bytes = 0;  // bytes of the segment files
  uint64_t segments = 0;    // segment files
  uint64_t queued = 0;      // demotions waiting for the writer
  uint64_t recovered = 0;   // pages found intact at open
  uint64_t demotions = 0;   // demotions taken (written, queued, or already on flash)
  uint64_t written = 0;  // demoted pages written and listed (not replaced or dropped while queued)
  uint64_t already_on_flash = 0;  // demotions of a version flash already held
  uint64_t refused = 0;           // demotions not taken: queue full, page too large, closing
  uint64_t write_failures = 0;    // demotions lost to a failed write (ENOSPC, EIO)
  uint64_t hits = 0;              // reads served
  uint64_t promotions = 0;        // of the hits, reads for a promotion back to memory
  uint64_t misses = 0;            // reads of a key (or version) flash does not hold
  uint64_t lru_drops = 0;         // pages dropped because flash was full
  uint64_t lru_kept = 0;          // recently read pages copied out of a reclaimed segment
  uint64_t drops = 0;             // listed pages removed by Drop
  uint64_t replaced = 0;          // pages replaced by a newer demotion of their key
  uint64_t bad_pages = 0;         // pages that failed their checksum (at open or read)
  uint64_t bad_at_open = 0;       // of those, found by the scan at open (never listed)
  uint64_t read_errors = 0;       // pages lost to a short read or an I/O error
  uint64_t torn_bytes = 0;        // bytes cut from a segment's torn tail at open
};

struct FlashEntry {
  std::string key;
  uint64_t version = 0;
  uint64_t length = 0;    // bytes
  uint64_t checksum = 0;  // XXH3 of the bytes; 0 while still queued
};

// Why a page is read: served to a client, read back into memory, or
// checked before a restarted node announces it (not a hit).
enum class ReadFor { kServe, kPromotion, kVerify };

// One page of a ReadMany.
struct FlashRead {
  std::string_view key;
  uint64_t version = 0;
  std::span<uint8_t> dest;
  absl::StatusOr<size_t> result = size_t{0};  // set by ReadMany, as Read answers
};

class FlashStore {
 public:
  // Opens (or creates) the store in options.dir and rebuilds its index from
  // the segments, logging what it found. InvalidArgument for options that
  // cannot work; Unavailable when the folder or a segment cannot be opened.
  static absl::StatusOr<std::unique_ptr<FlashStore>> Open(FlashOptions options);
  // Writes what is queued, then stops the writer.
  ~FlashStore();
  FlashStore(const FlashStore&) = delete;
  FlashStore& operator=(const FlashStore&) = delete;

  // Queues `bytes` (copied before it returns) to be written as `key` at
  // `version`, replacing any other version. Never waits for I/O. OK when
  // queued or already on flash at that version; ResourceExhausted when the
  // queue is full; InvalidArgument when the page or key can never fit.
  absl::Status Demote(std::string_view key, uint64_t version, std::span<const uint8_t> bytes);

  // Reads `key` at `version` into `dest` and returns its length. NotFound
  // when flash does not hold that version; OutOfRange when dest is too
  // small; DataLoss on a checksum mismatch and Unavailable on a short read
  // or I/O error (the page is then dropped). dest's bytes are unspecified
  // unless OK.
  absl::StatusOr<size_t> Read(std::string_view key, uint64_t version, std::span<uint8_t> dest,
                              ReadFor purpose = ReadFor::kServe);

  // Reads several pages at once (the flash half of a prefix), with many
  // reads in flight (platform::ReadMany); each result as Read's.
  void ReadMany(std::span<FlashRead> reads, ReadFor purpose = ReadFor::kServe);

  // The page `key` flash holds (or has queued). NotFound when none.
  absl::StatusOr<FlashEntry> Find(std::string_view key) const;

  // Removes `key` for good (a tombstone keeps it removed after a restart).
  // NotFound when flash does not hold it.
  absl::Status Drop(std::string_view key);

  // Every page held or queued: what a restarted node announces.
  std::vector<FlashEntry> List() const;

  FlashCounters counters() const;

  // Returns once every demotion and drop queued before the call is written
  // (or has failed).
  void Flush();

  const FlashOptions& options() const { return options_; }

 private:
  struct Segment {
    std::shared_ptr<Fd> fd;  // shared: a read in flight keeps a reclaimed file open
    uint64_t bytes = 0;      // its length on disk
    // Keys of the records written to it, in order (some since replaced): what a
    // reclaim of this segment looks at, without walking the whole index.
    std::vector<std::string> keys;
  };

  struct IndexEntry {
    uint64_t segment = 0;
    uint64_t offset = 0;        // of the record's header in the segment
    uint64_t value_offset = 0;  // of its bytes in the segment
    uint64_t version = 0;
    uint64_t length = 0;
    uint64_t checksum = 0;
    uint64_t sequence = 0;    // the record's; tells a later change of the key apart
    bool referenced = false;  // read since written: kept once when its segment is reclaimed
  };

  struct Pending {
    std::string key;
    uint64_t version = 0;
    std::vector<uint8_t> bytes;
    bool tombstone = false;
    uint64_t ticket = 0;  // order of queueing, for Flush
  };
  struct ScanResult;  // flash_store_internal.h

  explicit FlashStore(FlashOptions options) : options_(std::move(options)) {}
  uint64_t live_segment_limit() const;

  // flash_rebuild.cc
  absl::Status Rebuild() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<ScanResult> ScanSegment(uint64_t id, int fd);
  bool ValueIntact(int fd, uint64_t offset, uint64_t length, uint64_t checksum);
  void AdoptHead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // flash_writer.cc, on the writer thread only.
  void WriterLoop();
  void WriteItem(const Pending& item);
  absl::StatusOr<uint64_t> Append(const Pending& item, uint64_t checksum, uint64_t sequence);
  absl::Status RollHead();
  void ReclaimOldest();
  void ReclaimEntry(const std::string& key, uint64_t segment, uint64_t& rewrite_budget);
  bool CopyForward(const std::string& key, const IndexEntry& entry);

  // flash_store.cc
  struct OnDisk {
    IndexEntry entry;
    std::shared_ptr<Fd> fd;  // null when the page was served from the queue
  };
  // Serves `key` from the queue, or says where it is on disk (`disk`); the
  // page's length, or Read's errors.
  absl::StatusOr<size_t> LocateLocked(std::string_view key, uint64_t version,
                                      std::span<uint8_t> dest, ReadFor purpose, OnDisk* disk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks what the disk read `got` into dest, and counts it.
  absl::StatusOr<size_t> FinishRead(std::string_view key, const OnDisk& disk,
                                    std::span<uint8_t> dest, const absl::StatusOr<size_t>& got,
                                    ReadFor purpose) ABSL_LOCKS_EXCLUDED(mu_);
  void CountHitLocked(ReadFor purpose) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked(const Pending& item, uint64_t segment, uint64_t offset, uint64_t checksum,
                     uint64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoseLocked(std::string_view key, uint64_t sequence, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string SegmentPath(uint64_t id) const;

  const FlashOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, IndexEntry> index_ ABSL_GUARDED_BY(mu_);
  // The newest queued demotion of each key: reads are served from it.
  absl::flat_hash_map<std::string, std::shared_ptr<const Pending>> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<const Pending>> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tickets_issued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tickets_done_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // By id, oldest first; the last is the head, appended to.
  std::map<uint64_t, Segment> segments_ ABSL_GUARDED_BY(mu_);
  FlashCounters counters_ ABSL_GUARDED_BY(mu_);

  // The writer thread's own (and Open's, before it starts).
  uint64_t head_id_ = 0;
  std::shared_ptr<Fd> head_fd_;
  uint64_t head_end_ = 0;
  uint64_t next_sequence_ = 1;
  std::thread writer_;
};

}  // namespace unipool::flash

#endif  // UNIPOOL_FLASH_FLASH_STORE_H_
