#include "batching.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_format.h"

namespace unipool {

absl::Status UnexpectedReply(std::string_view request) {
  return absl::InternalError(absl::StrFormat("unexpected reply to %s", request));
}

void RunConcurrently(size_t count, uint64_t bytes, const std::function<void(size_t)>& run) {
  constexpr uint64_t kConcurrentFromBytes = 1ull << 20;
  constexpr size_t kMaxInFlight = 8;
  if (count < 2 || bytes < kConcurrentFromBytes) {
    for (size_t r = 0; r < count; ++r) run(r);
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t r = next.fetch_add(1); r < count; r = next.fetch_add(1)) run(r);
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(count, kMaxInFlight); ++t) helpers.emplace_back(worker);
  worker();
  for (std::thread& h : helpers) h.join();
}

}  // namespace unipool
