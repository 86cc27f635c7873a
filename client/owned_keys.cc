// The batch calls for callers that keep keys as std::string and pages as
// std::vector<uint8_t>: they make the string_view and span arrays the core
// calls take, so the caller does not keep three parallel vectors alive.
#include <string>
#include <string_view>
#include <vector>

#include "unipool/client.h"

namespace unipool {
namespace {

std::vector<std::string_view> Views(const std::vector<std::string>& keys) {
  return {keys.begin(), keys.end()};
}

}  // namespace

std::vector<absl::Status> Client::BatchPut(const std::vector<std::string>& keys,
                                           const std::vector<std::vector<uint8_t>>& values,
                                           const PutOptions& options) {
  std::vector<std::span<const uint8_t>> spans(values.begin(), values.end());
  return BatchPut(Views(keys), spans, options);
}

std::vector<absl::StatusOr<std::vector<uint8_t>>> Client::BatchGet(
    const std::vector<std::string>& keys) {
  return BatchGet(Views(keys));
}

std::vector<absl::StatusOr<size_t>> Client::BatchGet(const std::vector<std::string>& keys,
                                                     std::vector<std::vector<uint8_t>>& buffers) {
  std::vector<std::span<uint8_t>> spans(buffers.begin(), buffers.end());
  return BatchGet(Views(keys), spans);
}

absl::StatusOr<size_t> Client::LookupPrefix(const std::vector<std::string>& keys) {
  return LookupPrefix(Views(keys));
}

absl::StatusOr<size_t> Client::GetPrefix(const std::vector<std::string>& keys,
                                         std::vector<std::vector<uint8_t>>& buffers) {
  std::vector<std::span<uint8_t>> spans(buffers.begin(), buffers.end());
  return GetPrefix(Views(keys), spans);
}

}  // namespace unipool
