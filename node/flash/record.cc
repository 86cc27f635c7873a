#include "unipool/flash/record.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"

namespace unipool::flash {
namespace {

constexpr size_t kChecksumAt = 56;
constexpr uint16_t kTombstoneFlag = 1;

void Put(uint8_t* at, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t Get(const uint8_t* at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(at[i]) << (8 * i);
  return value;
}

// XXH3 over the header's first 56 bytes and the key: a torn or flipped
// header, or a key that does not belong to it, fails.
uint64_t HeaderChecksum(const uint8_t* header, std::string_view key) {
  ChecksumBuilder builder;
  builder.Update({header, kChecksumAt});
  builder.Update({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  return builder.Finish();
}

}  // namespace

uint64_t RecordHeader::span_bytes() const {
  uint64_t end = value_offset() + value_length;
  return (end + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
}

HeaderBytes EncodeRecordHeader(const RecordHeader& header, std::string_view key) {
  HeaderBytes out{};
  uint8_t* p = out.data();
  Put(p + 0, kRecordMagic, 4);
  Put(p + 4, kRecordFormat, 2);
  Put(p + 6, header.tombstone ? kTombstoneFlag : 0, 2);
  Put(p + 8, key.size(), 4);
  Put(p + 16, header.version, 8);
  Put(p + 24, header.value_length, 8);
  Put(p + 32, header.value_checksum, 8);
  Put(p + 40, header.sequence, 8);
  Put(p + kChecksumAt, HeaderChecksum(p, key), 8);
  return out;
}

absl::StatusOr<RecordHeader> DecodeRecordHeader(std::span<const uint8_t> block,
                                                uint64_t max_record_bytes, std::string* key) {
  if (block.size() < kHeaderBytes) return absl::DataLossError("short header");
  const uint8_t* p = block.data();
  if (Get(p, 4) != kRecordMagic) return absl::DataLossError("no record magic");
  if (Get(p + 4, 2) != kRecordFormat) {
    return absl::DataLossError(absl::StrFormat("record format %d", Get(p + 4, 2)));
  }
  uint16_t flags = static_cast<uint16_t>(Get(p + 6, 2));
  RecordHeader header;
  header.key_length = static_cast<uint32_t>(Get(p + 8, 4));
  if (header.key_length == 0 || header.key_length > kMaxRecordKeyBytes ||
      kHeaderBytes + header.key_length > block.size() || (flags & ~kTombstoneFlag) != 0 ||
      Get(p + 12, 4) != 0 || Get(p + 48, 8) != 0) {
    return absl::DataLossError("header fields out of bounds");
  }
  std::string_view claimed(reinterpret_cast<const char*>(p + kHeaderBytes), header.key_length);
  if (Get(p + kChecksumAt, 8) != HeaderChecksum(p, claimed)) {
    return absl::DataLossError("header checksum mismatch");
  }
  header.tombstone = (flags & kTombstoneFlag) != 0;
  header.version = Get(p + 16, 8);
  header.value_length = Get(p + 24, 8);
  header.value_checksum = Get(p + 32, 8);
  header.sequence = Get(p + 40, 8);
  // Compared by subtraction: a claimed length near 2^64 cannot wrap around.
  if (header.value_length > max_record_bytes ||
      header.value_offset() > max_record_bytes - header.value_length ||
      (header.tombstone && header.value_length != 0)) {
    return absl::DataLossError("value past the segment's end");
  }
  key->assign(claimed);
  return header;
}

}  // namespace unipool::flash
