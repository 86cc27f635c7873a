#include "unipool/tensor/dtype.h"

#include <array>

#include "absl/strings/str_format.h"

namespace unipool {
namespace {

struct DTypeEntry {
  std::string_view name;
  uint32_t bytes;
};

// The safetensors dtypes with whole-byte elements.
constexpr std::array<DTypeEntry, 17> kDTypes = {{
    {"F64", 8},
    {"F32", 4},
    {"F16", 2},
    {"BF16", 2},
    {"F8_E4M3", 1},
    {"F8_E5M2", 1},
    {"F8_E8M0", 1},
    {"I64", 8},
    {"I32", 4},
    {"I16", 2},
    {"I8", 1},
    {"U64", 8},
    {"U32", 4},
    {"U16", 2},
    {"U8", 1},
    {"BOOL", 1},
    {"C64", 8},
}};

constexpr std::array<std::string_view, kDTypes.size()> kNames = [] {
  std::array<std::string_view, kDTypes.size()> names{};
  for (size_t i = 0; i < kDTypes.size(); ++i) names[i] = kDTypes[i].name;
  return names;
}();

}  // namespace

std::optional<uint32_t> DTypeSize(std::string_view dtype) {
  for (const DTypeEntry& entry : kDTypes) {
    if (entry.name == dtype) return entry.bytes;
  }
  return std::nullopt;
}

std::span<const std::string_view> KnownDTypes() { return kNames; }

absl::StatusOr<uint64_t> TensorBytes(std::string_view dtype, std::span<const uint64_t> shape) {
  std::optional<uint32_t> element = DTypeSize(dtype);
  if (!element) return absl::InvalidArgumentError(absl::StrFormat("unknown dtype '%s'", dtype));
  uint64_t bytes = *element;
  for (uint64_t dim : shape) {
    if (dim != 0 && bytes > UINT64_MAX / dim) {
      return absl::InvalidArgumentError("shape's byte size does not fit in 64 bits");
    }
    bytes *= dim;
  }
  return bytes;
}

}  // namespace unipool
