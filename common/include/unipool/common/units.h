// Human sizes: "8GiB", "512MiB", "4KiB", "1048576", "2G" (powers of 1024).
#ifndef UNIPOOL_COMMON_UNITS_H_
#define UNIPOOL_COMMON_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace unipool {

// Parses a byte count. Suffixes B, K/KiB/KB, M/MiB/MB, G/GiB/GB, T/TiB/TB all
// mean powers of 1024 (memory is sized in binary units). Case-insensitive.
// Returns InvalidArgument for anything else, zero, or overflow.
absl::StatusOr<uint64_t> ParseSize(std::string_view text);

// "0 B", "4.0 KiB", "1.5 GiB".
std::string FormatSize(uint64_t bytes);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_UNITS_H_
