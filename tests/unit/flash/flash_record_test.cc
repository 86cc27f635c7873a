// The flash record header (node/flash/record.h): what is written reads back,
// and every damaged or hostile header is refused before a field is used.
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "unipool/common/checksum.h"
#include "unipool/flash/record.h"

namespace unipool::flash {
namespace {

constexpr uint64_t kRoom = 1 << 20;

std::vector<uint8_t> Block(const RecordHeader& header, std::string_view key) {
  HeaderBytes encoded = EncodeRecordHeader(header, key);
  std::vector<uint8_t> block(encoded.begin(), encoded.end());
  block.insert(block.end(), key.begin(), key.end());
  return block;
}

RecordHeader Sample() {
  RecordHeader h;
  h.version = 7;
  h.value_length = 65536;
  h.value_checksum = 0x1234567890abcdefull;
  h.sequence = 42;
  return h;
}

TEST(FlashRecordTest, WhatIsWrittenReadsBack) {
  std::string key;
  auto decoded = DecodeRecordHeader(Block(Sample(), "llama/kv/1"), kRoom, &key);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(key, "llama/kv/1");
  EXPECT_EQ(decoded->version, 7u);
  EXPECT_EQ(decoded->value_length, 65536u);
  EXPECT_EQ(decoded->value_checksum, 0x1234567890abcdefull);
  EXPECT_EQ(decoded->sequence, 42u);
  EXPECT_FALSE(decoded->tombstone);
  EXPECT_EQ(decoded->value_offset(), kHeaderBytes + 10);
  EXPECT_EQ(decoded->span_bytes() % kRecordAlignment, 0u);
  EXPECT_GE(decoded->span_bytes(), decoded->value_offset() + 65536);
}

TEST(FlashRecordTest, EveryFlippedByteOfHeaderOrKeyIsRefused) {
  std::vector<uint8_t> good = Block(Sample(), "some/key");
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> bad = good;
    bad[i] ^= 0x10;
    std::string key;
    EXPECT_FALSE(DecodeRecordHeader(bad, kRoom, &key).ok()) << "byte " << i;
  }
}

TEST(FlashRecordTest, LengthsPastTheSegmentAreRefused) {
  RecordHeader h = Sample();
  std::string key;
  // Exactly fits, then one byte too many.
  uint64_t fits = kHeaderBytes + 3 + h.value_length;
  EXPECT_TRUE(DecodeRecordHeader(Block(h, "abc"), fits, &key).ok());
  EXPECT_FALSE(DecodeRecordHeader(Block(h, "abc"), fits - 1, &key).ok());
  // A claimed length near 2^64 does not wrap around the bound.
  h.value_length = ~0ull - 10;
  EXPECT_TRUE(absl::IsDataLoss(DecodeRecordHeader(Block(h, "abc"), kRoom, &key).status()));
}

TEST(FlashRecordTest, TruncatedBlocksAreRefused) {
  std::vector<uint8_t> good = Block(Sample(), "abcdef");
  std::string key;
  for (size_t size : {size_t{0}, size_t{10}, kHeaderBytes, good.size() - 1}) {
    EXPECT_FALSE(DecodeRecordHeader({good.data(), size}, kRoom, &key).ok()) << size;
  }
}

// A header claiming a key of `length` bytes, whose checksum matches it.
std::vector<uint8_t> WithKeyLength(uint32_t length) {
  std::vector<uint8_t> block = Block(Sample(), "k");
  std::memcpy(&block[8], &length, 4);
  block.resize(kHeaderBytes + length, 'k');
  std::vector<uint8_t> covered(block.begin(), block.begin() + 56);
  covered.insert(covered.end(), block.begin() + kHeaderBytes, block.end());
  uint64_t sum = Checksum(covered);
  std::memcpy(&block[56], &sum, 8);
  return block;
}

TEST(FlashRecordTest, KeysOverTheBoundAreRefusedEvenWithAMatchingChecksum) {
  std::string key;
  EXPECT_TRUE(DecodeRecordHeader(WithKeyLength(kMaxRecordKeyBytes), kRoom, &key).ok());
  EXPECT_EQ(key.size(), kMaxRecordKeyBytes);
  EXPECT_FALSE(DecodeRecordHeader(WithKeyLength(kMaxRecordKeyBytes + 1), kRoom, &key).ok());
}

TEST(FlashRecordTest, TombstonesCarryNoValue) {
  RecordHeader h;
  h.tombstone = true;
  h.sequence = 9;
  std::string key;
  auto decoded = DecodeRecordHeader(Block(h, "gone"), kRoom, &key);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->tombstone);
  EXPECT_EQ(decoded->value_length, 0u);
}

}  // namespace
}  // namespace unipool::flash
