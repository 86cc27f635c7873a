// Element types of tensors, by their safetensors names ("F32", "BF16", ...).
// A dtype travels and is stored as that name; this table says how many bytes
// one element takes.
#ifndef UNIPOOL_TENSOR_DTYPE_H_
#define UNIPOOL_TENSOR_DTYPE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"

namespace unipool {

// Bytes per element of `dtype`, or nullopt for a name that is not a known
// safetensors dtype (sub-byte types such as F4 are not supported: their
// elements do not start on byte boundaries, so rows and columns cannot be
// cut at element granularity).
std::optional<uint32_t> DTypeSize(std::string_view dtype);

// Every supported dtype name, in the order of the table.
std::span<const std::string_view> KnownDTypes();

// Bytes of a tensor of `dtype` and `shape` (product of the dimensions times
// the element size; an empty shape is a scalar: one element).
// InvalidArgument for an unknown dtype or a size past 2^64.
absl::StatusOr<uint64_t> TensorBytes(std::string_view dtype, std::span<const uint64_t> shape);

}  // namespace unipool

#endif  // UNIPOOL_TENSOR_DTYPE_H_
