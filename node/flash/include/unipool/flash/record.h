// One page on flash: the record format of the segment files (docs/flash.md).
//
// A record is a 64-byte header, the key, then the page's bytes; the next
// record starts at the next multiple of kRecordAlignment. All integers are
// little-endian.
//
//   0  u32 magic "UPFL"          24 u64 value length
//   4  u16 format (1)            32 u64 XXH3 of the value
//   6  u16 flags (1: tombstone)  40 u64 sequence (write order, never reused)
//   8  u32 key length            48 u64 reserved, 0
//  12  u32 reserved, 0           56 u64 XXH3 of bytes 0-55 and the key
//  16  u64 version
//
// Everything read back from disk is untrusted: DecodeRecordHeader checks the
// magic, the format, the lengths against their bounds and the header's own
// checksum (over the key too) before any field is used.
//
// Thread safety: pure functions.
#ifndef UNIPOOL_FLASH_RECORD_H_
#define UNIPOOL_FLASH_RECORD_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace unipool::flash {

inline constexpr size_t kHeaderBytes = 64;
inline constexpr uint32_t kRecordMagic = 0x4c465055;  // "UPFL" on disk
inline constexpr uint16_t kRecordFormat = 1;
// Records start on 4 KiB boundaries: a scan after a damaged header looks for
// the next one only there, and a page could be read with O_DIRECT later.
inline constexpr uint64_t kRecordAlignment = 4096;
inline constexpr uint32_t kMaxRecordKeyBytes = 1024;  // protocol.h's kMaxKeyBytes
static_assert(kHeaderBytes + kMaxRecordKeyBytes <= kRecordAlignment,
              "a header and its key fit in the first block of a record");

struct RecordHeader {
  bool tombstone = false;  // Drop of `key`: no value follows
  uint32_t key_length = 0;
  uint64_t version = 0;
  uint64_t value_length = 0;
  uint64_t value_checksum = 0;
  uint64_t sequence = 0;

  // Bytes from the record's start to its value.
  uint64_t value_offset() const { return kHeaderBytes + key_length; }
  // Bytes from the record's start to the next record's.
  uint64_t span_bytes() const;
};

using HeaderBytes = std::array<uint8_t, kHeaderBytes>;

// The header of `header` for `key` (its length is taken from key).
// REQUIRES: key.size() <= kMaxRecordKeyBytes.
HeaderBytes EncodeRecordHeader(const RecordHeader& header, std::string_view key);

// `block` holds at least the header and the key (kHeaderBytes +
// kMaxRecordKeyBytes bytes, or what is left of the file). DataLoss when it
// is not a whole, intact header with a key within bounds, or when its value
// would end past `max_record_bytes` (what is left of the segment from the
// record's start). On success `key` holds the key.
absl::StatusOr<RecordHeader> DecodeRecordHeader(std::span<const uint8_t> block,
                                                uint64_t max_record_bytes, std::string* key);

}  // namespace unipool::flash

#endif  // UNIPOOL_FLASH_RECORD_H_
