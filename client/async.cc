// The asynchronous batches (Client::BatchGetAsync, BatchPutAsync,
// GetPrefixAsync): each runs the synchronous call on a thread of its own
// (std::async), so any number are in flight at once and a slow node holds up
// only the batches that wait for it. The keys are copied into the task; the
// caller's buffers are used in place.
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include "unipool/client.h"

namespace unipool {
namespace {

// The batch's keys, owned by its task (the caller's may go away).
struct OwnedKeys {
  explicit OwnedKeys(std::span<const std::string_view> keys) : keys(keys.begin(), keys.end()) {}
  std::vector<std::string_view> views() const { return {keys.begin(), keys.end()}; }
  std::vector<std::string> keys;
};

}  // namespace

Pending<std::vector<absl::StatusOr<size_t>>> Client::BatchGetAsync(
    std::span<const std::string_view> keys, std::span<const std::span<uint8_t>> buffers) {
  return Pending(std::async(
      std::launch::async,
      [this, owned = OwnedKeys(keys), buffers = std::vector(buffers.begin(), buffers.end())] {
        return BatchGet(owned.views(), buffers);
      }));
}

Pending<std::vector<absl::Status>> Client::BatchPutAsync(
    std::span<const std::string_view> keys, std::span<const std::span<const uint8_t>> values,
    const PutOptions& options) {
  return Pending(
      std::async(std::launch::async,
                 [this, owned = OwnedKeys(keys), values = std::vector(values.begin(), values.end()),
                  options] { return BatchPut(owned.views(), values, options); }));
}

Pending<absl::StatusOr<size_t>> Client::GetPrefixAsync(
    std::span<const std::string_view> keys, std::span<const std::span<uint8_t>> buffers) {
  return Pending(std::async(
      std::launch::async,
      [this, owned = OwnedKeys(keys), buffers = std::vector(buffers.begin(), buffers.end())] {
        return GetPrefix(owned.views(), buffers);
      }));
}

}  // namespace unipool
