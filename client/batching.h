// Small helpers the SDK's batch paths share: cutting batches into directory
// chunks and node requests, separating bad keys, and running node requests
// side by side.
//
// Thread safety: pure functions; RunConcurrently's requests must touch
// disjoint state.
#ifndef UNIPOOL_CLIENT_BATCHING_H_
#define UNIPOOL_CLIENT_BATCHING_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "unipool/common/frame.h"
#include "unipool/common/protocol.h"

namespace unipool {

// Node requests are cut so one frame's payload stays well under the frame
// limit and a node's receive buffer is filled in large pieces.
inline constexpr uint64_t kMaxBytesPerNodeRequest = 256ull << 20;
static_assert(kMaxBytesPerNodeRequest <= FrameLimits{}.max_payload_bytes);

// InternalError naming the request whose reply did not have its shape.
absl::Status UnexpectedReply(std::string_view request);

// Calls `fn(begin, end)` over [0, count) in chunks of at most kMaxBatchItems
// (what one directory request may carry).
template <typename Fn>
void InChunks(size_t count, Fn fn) {
  for (size_t first = 0; first < count; first += kMaxBatchItems) {
    fn(first, std::min(count, first + kMaxBatchItems));
  }
}

// Items addressed to one node (`items`, indexes into `lengths`), cut into
// requests of bounded count and bytes: `on_request(first, last)` is called
// for each range [first, last) of `items`.
template <typename Fn>
void ForEachNodeRequest(const std::vector<size_t>& items, const std::vector<uint64_t>& lengths,
                        Fn on_request) {
  size_t first = 0;
  while (first < items.size()) {
    size_t last = first;
    uint64_t bytes = 0;
    while (last < items.size() && last - first < kMaxBatchItems &&
           (last == first || bytes + lengths[items[last]] <= kMaxBytesPerNodeRequest)) {
      bytes += lengths[items[last]];
      ++last;
    }
    on_request(first, last);
    first = last;
  }
}

// The valid keys among keys[begin, end) and their indexes; each invalid key's
// error goes straight into its result.
template <typename Results>
std::pair<std::vector<std::string_view>, std::vector<size_t>> ValidKeys(
    std::span<const std::string_view> keys, size_t begin, size_t end, Results& results) {
  std::vector<std::string_view> valid;
  std::vector<size_t> index;
  for (size_t i = begin; i < end; ++i) {
    if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
      results[i] = s;
    } else {
      valid.push_back(keys[i]);
      index.push_back(i);
    }
  }
  return {std::move(valid), std::move(index)};
}

// Runs `run(0)` .. `run(count - 1)`, several at once when there are several
// and they move `bytes`, enough to repay starting threads (small batches stay
// on the caller's thread). REQUIRES: the runs touch disjoint state.
void RunConcurrently(size_t count, uint64_t bytes, const std::function<void(size_t)>& run);

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_BATCHING_H_
