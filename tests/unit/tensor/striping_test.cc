// Striping arithmetic: pieces of byte ranges, rows, and column slices
// gathered stripe by stripe equal the same slices taken from the whole.
#include "unipool/tensor/striping.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

namespace unipool {
namespace {

TEST(Striping, CountsAndLengths) {
  StripeLayout layout{.length = 10, .stripe_size = 4};
  EXPECT_EQ(layout.stripes(), 3u);
  EXPECT_EQ(layout.stripe_length(0), 4u);
  EXPECT_EQ(layout.stripe_length(2), 2u);
  EXPECT_EQ(layout.stripe_length(3), 0u);
  EXPECT_EQ((StripeLayout{.length = 0, .stripe_size = 4}).stripes(), 0u);
  EXPECT_EQ((StripeLayout{.length = 400ull << 20}).stripes(), 7u);  // default 64 MiB stripes
  EXPECT_TRUE(CheckLayout({.length = kMaxTensorBytes}).ok());
  EXPECT_FALSE(CheckLayout({.length = kMaxTensorBytes + 1}).ok());
  EXPECT_FALSE(CheckLayout({.length = 1, .stripe_size = 100}).ok());
  EXPECT_FALSE(CheckLayout({.length = 1, .stripe_size = kMaxStripeSize * 2}).ok());
}

TEST(Striping, PiecesOfARange) {
  StripeLayout layout{.length = 10, .stripe_size = 4};
  auto pieces = PiecesOfRange(layout, 3, 6);
  ASSERT_TRUE(pieces.ok());
  EXPECT_EQ(*pieces, (std::vector<StripePiece>{{0, 3, 1, 0}, {1, 0, 4, 1}, {2, 0, 1, 5}}));
  EXPECT_EQ(PiecesOfRange(layout, 4, 4)->size(), 1u);
  EXPECT_TRUE(PiecesOfRange(layout, 10, 0)->empty());
  EXPECT_FALSE(PiecesOfRange(layout, 8, 3).ok());
  EXPECT_FALSE(PiecesOfRange(layout, 11, 0).ok());
  EXPECT_FALSE(PiecesOfRange(layout, 1, UINT64_MAX).ok());
}

TEST(Striping, RowBytes) {
  std::vector<uint64_t> shape = {5, 3, 2};
  EXPECT_EQ(*RowBytes(shape, 2, 1, 2), (ByteRange{12, 36}));
  EXPECT_EQ(*RowBytes(shape, 2, 5, 0), (ByteRange{60, 60}));
  EXPECT_FALSE(RowBytes(shape, 2, 4, 2).ok());
  EXPECT_FALSE(RowBytes({}, 2, 0, 1).ok());
}

TEST(Striping, ColumnSliceShape) {
  std::vector<uint64_t> shape = {4, 6, 3};
  auto slice = ColumnsOf(shape, 4, 2, 3);
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ(slice->rows, 4u);
  EXPECT_EQ(slice->row_bytes, 72u);
  EXPECT_EQ(slice->segment_offset, 24u);
  EXPECT_EQ(slice->segment_bytes, 36u);
  EXPECT_FALSE(ColumnsOf(shape, 4, 5, 2).ok());
  EXPECT_FALSE(ColumnsOf(std::vector<uint64_t>{8}, 4, 0, 1).ok());
}

// Gathering stripe by stripe equals gathering from the whole tensor, for
// stripes smaller than, equal to and larger than a row.
TEST(Striping, GatheredColumnsEqualTheSliceOfTheWhole) {
  std::mt19937 random(7);
  for (int round = 0; round < 300; ++round) {
    std::vector<uint64_t> shape = {1 + random() % 9, 1 + random() % 9};
    if (round % 3 == 0) shape.push_back(1 + random() % 3);
    uint32_t element = 1u << (random() % 3);
    uint64_t cols = shape[1];
    uint64_t col_begin = random() % cols;
    uint64_t count = random() % (cols - col_begin + 1);
    auto slice = ColumnsOf(shape, element, col_begin, count);
    ASSERT_TRUE(slice.ok());
    uint64_t length = slice->rows * slice->row_bytes;
    std::vector<uint8_t> whole(length);
    std::iota(whole.begin(), whole.end(), 0);
    std::vector<uint8_t> expected;
    for (uint64_t r = 0; r < slice->rows; ++r) {
      auto at = whole.begin() + r * slice->row_bytes + slice->segment_offset;
      expected.insert(expected.end(), at, at + slice->segment_bytes);
    }
    StripeLayout layout{.length = length, .stripe_size = 1 + random() % 40};
    std::vector<uint8_t> out(slice->gathered_bytes(), 0xee);
    std::vector<uint64_t> stripes = StripesOfColumns(layout, *slice);
    for (uint64_t s : stripes) {
      std::span<const uint8_t> bytes(whole.data() + layout.stripe_begin(s),
                                     layout.stripe_length(s));
      GatherColumns(layout, *slice, s, bytes, out);
    }
    ASSERT_EQ(out, expected) << "round " << round;
    // Only stripes that hold slice bytes are listed, each once, ascending.
    for (size_t i = 1; i < stripes.size(); ++i) ASSERT_LT(stripes[i - 1], stripes[i]);
    for (uint64_t s : stripes) {
      bool holds = false;
      for (uint64_t r = 0; r < slice->rows && !holds; ++r) {
        uint64_t b = r * slice->row_bytes + slice->segment_offset;
        holds = b < layout.stripe_begin(s) + layout.stripe_length(s) &&
                b + slice->segment_bytes > layout.stripe_begin(s);
      }
      ASSERT_TRUE(holds) << "stripe " << s << " listed but holds none of the slice";
    }
  }
}

}  // namespace
}  // namespace unipool
