// Client::LookupPrefix and Client::GetPrefix: the engine's prefix hit.
#include <algorithm>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/client.h"

namespace unipool {

// PROVISIONAL (replaced by the one-round-trip prefix Lookup once the SDK's
// internals are split into files): counts the leading existing keys.
absl::StatusOr<size_t> Client::LookupPrefix(std::span<const std::string_view> keys) {
  absl::StatusOr<std::vector<bool>> exists = BatchExists(keys);
  if (!exists.ok()) return exists.status();
  return std::find(exists->begin(), exists->end(), false) - exists->begin();
}

absl::StatusOr<size_t> Client::GetPrefix(std::span<const std::string_view> keys,
                                         std::span<const std::span<uint8_t>> buffers) {
  if (buffers.size() != keys.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("GetPrefix: %u keys but %u buffers", keys.size(), buffers.size()));
  }
  absl::StatusOr<size_t> present = LookupPrefix(keys);
  if (!present.ok()) return present.status();
  std::vector<absl::StatusOr<size_t>> read =
      BatchGet(keys.first(*present), buffers.first(*present));
  size_t n = 0;
  while (n < read.size() && read[n].ok()) ++n;
  // A buffer too small for a present key is the caller's error, not the end
  // of the prefix.
  if (n < read.size() && absl::IsInvalidArgument(read[n].status())) return read[n].status();
  return n;
}

}  // namespace unipool
