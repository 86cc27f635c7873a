// How a tensor's bytes are cut into stripes, and which stripes (and which
// bytes of each) a byte range, a row range or a column slice touches. Pure
// arithmetic, shared by the SDK's writes and reads.
//
// A tensor of L bytes with stripe size S has ceil(L / S) stripes; stripe i
// holds bytes [i*S, min((i+1)*S, L)). Rows are slices of the first
// dimension; columns are slices of the second (a tensor-parallel shard of a
// row-major weight matrix): in memory a column slice is one segment per
// row, so it is strided, and reads gather it into a contiguous buffer.
#ifndef UNIPOOL_TENSOR_STRIPING_H_
#define UNIPOOL_TENSOR_STRIPING_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace unipool {

// Default stripe: large enough that per-request costs vanish, small enough
// that a tensor spreads over several nodes and a row range reads little
// more than it needs.
inline constexpr uint64_t kDefaultStripeSize = 64ull << 20;
// Bounds of the per-tensor option: a stripe is one object (at most 1 GiB).
inline constexpr uint64_t kMinStripeSize = 4096;
inline constexpr uint64_t kMaxStripeSize = 1ull << 30;
// Largest tensor (and so at most 1 TiB / 4 KiB stripes; with the default
// stripe, 16384).
inline constexpr uint64_t kMaxTensorBytes = 1ull << 40;

struct StripeLayout {
  uint64_t length = 0;  // tensor bytes
  uint64_t stripe_size = kDefaultStripeSize;

  uint64_t stripes() const { return (length + stripe_size - 1) / stripe_size; }
  uint64_t stripe_begin(uint64_t i) const { return i * stripe_size; }
  uint64_t stripe_length(uint64_t i) const;
};

// InvalidArgument unless kMinStripeSize <= stripe_size <= kMaxStripeSize and
// length <= kMaxTensorBytes.
absl::Status CheckLayout(const StripeLayout& layout);

// One contiguous piece of a read: `length` bytes at `stripe_offset` of
// stripe `stripe` go to `out_offset` of the caller's buffer.
struct StripePiece {
  uint64_t stripe = 0;
  uint64_t stripe_offset = 0;
  uint64_t length = 0;
  uint64_t out_offset = 0;
  bool operator==(const StripePiece&) const = default;
};

// The pieces of bytes [begin, begin + length) of the tensor, one per stripe
// touched, in order. InvalidArgument when the range passes the end.
absl::StatusOr<std::vector<StripePiece>> PiecesOfRange(const StripeLayout& layout, uint64_t begin,
                                                       uint64_t length);

// Bytes [begin, end) of the tensor.
struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t length() const { return end - begin; }
  bool operator==(const ByteRange&) const = default;
};

// Bytes of rows [row_begin, row_begin + rows) of the first dimension of a
// tensor of `shape` with `element_size`-byte elements. InvalidArgument for a
// scalar or rows past the end.
absl::StatusOr<ByteRange> RowBytes(std::span<const uint64_t> shape, uint32_t element_size,
                                   uint64_t row_begin, uint64_t rows);

// Columns [col_begin, col_begin + cols) of the second dimension: in each of
// `rows` rows of `row_bytes`, the segment [segment_offset, segment_offset +
// segment_bytes). Gathered, row r's segment lands at r * segment_bytes.
struct ColumnSlice {
  uint64_t rows = 0;
  uint64_t row_bytes = 0;
  uint64_t segment_offset = 0;
  uint64_t segment_bytes = 0;
  uint64_t gathered_bytes() const { return rows * segment_bytes; }
};

// InvalidArgument for fewer than two dimensions or columns past the end.
absl::StatusOr<ColumnSlice> ColumnsOf(std::span<const uint64_t> shape, uint32_t element_size,
                                      uint64_t col_begin, uint64_t cols);

// Stripes holding any byte of the slice, ascending.
std::vector<uint64_t> StripesOfColumns(const StripeLayout& layout, const ColumnSlice& slice);

// Copies the slice's bytes that lie in stripe `stripe` (whose bytes are
// `stripe_bytes`, stripe_length(stripe) long) to their place in `out`
// (slice.gathered_bytes() long). Calling it for every stripe of
// StripesOfColumns fills `out` completely.
void GatherColumns(const StripeLayout& layout, const ColumnSlice& slice, uint64_t stripe,
                   std::span<const uint8_t> stripe_bytes, std::span<uint8_t> out);

}  // namespace unipool

#endif  // UNIPOOL_TENSOR_STRIPING_H_
