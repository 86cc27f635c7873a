#include "unipool/tensor/striping.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace unipool {

uint64_t StripeLayout::stripe_length(uint64_t i) const {
  uint64_t begin = stripe_begin(i);
  return begin >= length ? 0 : std::min(stripe_size, length - begin);
}

absl::Status CheckLayout(const StripeLayout& layout) {
  if (layout.stripe_size < kMinStripeSize || layout.stripe_size > kMaxStripeSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "stripe size %d is outside [%d, %d]", layout.stripe_size, kMinStripeSize, kMaxStripeSize));
  }
  if (layout.length > kMaxTensorBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tensor of %d bytes is over the %d-byte limit", layout.length, kMaxTensorBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StripePiece>> PiecesOfRange(const StripeLayout& layout, uint64_t begin,
                                                       uint64_t length) {
  if (begin > layout.length || length > layout.length - begin) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bytes [%d, +%d) pass the tensor's end (%d bytes)", begin, length, layout.length));
  }
  std::vector<StripePiece> pieces;
  uint64_t at = begin;
  uint64_t end = begin + length;
  while (at < end) {
    uint64_t stripe = at / layout.stripe_size;
    uint64_t offset = at - layout.stripe_begin(stripe);
    uint64_t n = std::min(layout.stripe_size - offset, end - at);
    pieces.push_back({stripe, offset, n, at - begin});
    at += n;
  }
  return pieces;
}

absl::StatusOr<ByteRange> RowBytes(std::span<const uint64_t> shape, uint32_t element_size,
                                   uint64_t row_begin, uint64_t rows) {
  if (shape.empty()) return absl::InvalidArgumentError("a scalar has no rows");
  if (row_begin > shape[0] || rows > shape[0] - row_begin) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rows [%d, +%d) pass the first dimension (%d)", row_begin, rows, shape[0]));
  }
  uint64_t row_bytes = element_size;
  for (size_t i = 1; i < shape.size(); ++i) row_bytes *= shape[i];
  return ByteRange{row_begin * row_bytes, (row_begin + rows) * row_bytes};
}

absl::StatusOr<ColumnSlice> ColumnsOf(std::span<const uint64_t> shape, uint32_t element_size,
                                      uint64_t col_begin, uint64_t cols) {
  if (shape.size() < 2) {
    return absl::InvalidArgumentError("column slices need at least two dimensions");
  }
  if (col_begin > shape[1] || cols > shape[1] - col_begin) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "columns [%d, +%d) pass the second dimension (%d)", col_begin, cols, shape[1]));
  }
  uint64_t column_bytes = element_size;  // one column of one row: the inner dimensions
  for (size_t i = 2; i < shape.size(); ++i) column_bytes *= shape[i];
  ColumnSlice slice;
  slice.rows = shape[0];
  slice.row_bytes = shape[1] * column_bytes;
  slice.segment_offset = col_begin * column_bytes;
  slice.segment_bytes = cols * column_bytes;
  return slice;
}

std::vector<uint64_t> StripesOfColumns(const StripeLayout& layout, const ColumnSlice& slice) {
  std::vector<uint64_t> stripes;
  if (slice.segment_bytes == 0) return stripes;
  for (uint64_t row = 0; row < slice.rows; ++row) {
    uint64_t begin = row * slice.row_bytes + slice.segment_offset;
    uint64_t first = begin / layout.stripe_size;
    uint64_t last = (begin + slice.segment_bytes - 1) / layout.stripe_size;
    // Rows go forward, so only the newest stripes can repeat.
    for (uint64_t s = first; s <= last; ++s) {
      if (stripes.empty() || stripes.back() < s) stripes.push_back(s);
    }
  }
  return stripes;
}

void GatherColumns(const StripeLayout& layout, const ColumnSlice& slice, uint64_t stripe,
                   std::span<const uint8_t> stripe_bytes, std::span<uint8_t> out) {
  if (slice.segment_bytes == 0 || slice.row_bytes == 0) return;
  uint64_t s_begin = layout.stripe_begin(stripe);
  uint64_t s_end = s_begin + std::min<uint64_t>(stripe_bytes.size(), layout.stripe_length(stripe));
  // The first row whose segment can reach into this stripe.
  uint64_t row = s_begin / slice.row_bytes;
  for (; row < slice.rows; ++row) {
    uint64_t seg_begin = row * slice.row_bytes + slice.segment_offset;
    if (seg_begin >= s_end) break;
    uint64_t begin = std::max(seg_begin, s_begin);
    uint64_t end = std::min(seg_begin + slice.segment_bytes, s_end);
    if (begin >= end) continue;
    std::memcpy(out.data() + row * slice.segment_bytes + (begin - seg_begin),
                stripe_bytes.data() + (begin - s_begin), end - begin);
  }
}

}  // namespace unipool
