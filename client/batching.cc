#include "batching.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_format.h"

namespace unipool {

absl::Status UnexpectedReply(std::string_view request) {
  return absl::InternalError(absl::StrFormat("unexpected reply to %s", request));
}

void RunConcurrently(const std::vector<std::function<void()>>& requests, uint64_t bytes) {
  constexpr uint64_t kConcurrentFromBytes = 1ull << 20;
  constexpr size_t kMaxInFlight = 8;
  if (requests.size() < 2 || bytes < kConcurrentFromBytes) {
    for (const auto& request : requests) request();
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t r = next.fetch_add(1); r < requests.size(); r = next.fetch_add(1)) requests[r]();
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(requests.size(), kMaxInFlight); ++t) helpers.emplace_back(worker);
  worker();
  for (std::thread& h : helpers) h.join();
}

}  // namespace unipool
