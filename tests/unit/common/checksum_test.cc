// The AVX2 builds of XXH3 (common/checksum_avx2.cc, transport/shm/shm_copy.cc) give
// exactly libxxhash's checksums, one-shot and streamed in any pieces, and the
// shm copy copies every byte at every alignment: a stored checksum must
// never depend on which machine computed it.
#include "unipool/common/checksum.h"

#include <xxhash.h>

#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "unipool/shm/shm_copy.h"

namespace unipool {
namespace {

std::vector<uint8_t> RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(size);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

constexpr size_t kSizes[] = {0,      1,      3,      16,      17,           128,   129,
                             240,    241,    1024,   4095,    4096,         65536, 100003,
                             131072, 131073, 262144, 1 << 20, (2 << 20) + 5};

TEST(ChecksumTest, SameAsLibxxhash) {
  for (size_t size : kSizes) {
    auto bytes = RandomBytes(size, static_cast<uint32_t>(size));
    EXPECT_EQ(Checksum(bytes), XXH3_64bits(bytes.data(), bytes.size())) << size;
  }
}

TEST(ChecksumTest, StreamedInAnyPiecesSameAsOneShot) {
  std::mt19937 rng(7);
  for (size_t size : kSizes) {
    auto bytes = RandomBytes(size, 99);
    ChecksumBuilder builder;
    size_t done = 0;
    while (done < size) {
      size_t n = std::min<size_t>(size - done, 1 + rng() % 70000);
      builder.Update(std::span<const uint8_t>(bytes).subspan(done, n));
      done += n;
    }
    EXPECT_EQ(builder.Finish(), XXH3_64bits(bytes.data(), bytes.size())) << size;
  }
}

// The shm write path reads each destination page before copying into it
// (to map it): the bytes there, up to the range's last one, stay as they were.
TEST(ChecksumTest, MappingForWritingChangesNoByte) {
  for (size_t size : kSizes) {
    auto bytes = RandomBytes(size + 8192, static_cast<uint32_t>(size) + 5);
    std::vector<uint8_t> before = bytes;
    MapForWriting(bytes.data() + 3, size);
    EXPECT_EQ(bytes, before) << size;
  }
}

TEST(ChecksumTest, ShmCopyCopiesAndChecksAtEveryAlignment) {
  for (size_t size : kSizes) {
    if (size == 0) continue;
    auto source = RandomBytes(size + 64, 5);
    for (size_t from_shift : {0, 1, 16, 63}) {
      for (size_t to_shift : {0, 7, 16, 48}) {
        const uint8_t* from = source.data() + from_shift;
        uint64_t checksum = XXH3_64bits(from, size);
        std::vector<uint8_t> into(size + 64, 0xAB);
        std::span<uint8_t> dest(into.data() + to_shift, size);
        EXPECT_TRUE(CopyAndCheck(dest, from, checksum)) << size;
        EXPECT_EQ(std::memcmp(dest.data(), from, size), 0) << size;
        EXPECT_EQ(into[to_shift + size], 0xAB) << "wrote past the end";
        EXPECT_FALSE(CopyAndCheck(dest, from, checksum ^ 1)) << size;
        std::vector<uint8_t> page(size + 64, 0);
        CopyPage(page.data() + to_shift, from, size);
        EXPECT_EQ(std::memcmp(page.data() + to_shift, from, size), 0) << size;
      }
    }
  }
}

}  // namespace
}  // namespace unipool
