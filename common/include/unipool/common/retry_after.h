// A hint carried by an error status: the same request may succeed if it is
// sent again after this long. The directory puts it on a "pool full for now"
// answer (ResourceExhausted while leases, held memory or reservations still
// hold the only room), and the client SDK waits that long, within its own
// budget, before it asks again (docs/directory.md, "A full pool waits").
// A status without the hint is final: asking again changes nothing until
// something else does (a pin removed, a quota raised).
//
// On the wire it is Status.retry_after_ms (schema/unipool.fbs); in memory an
// absl::Status payload, so it travels with the status through any code that
// passes statuses on unchanged.
#ifndef UNIPOOL_COMMON_RETRY_AFTER_H_
#define UNIPOOL_COMMON_RETRY_AFTER_H_

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/time/time.h"

namespace unipool {

inline constexpr char kRetryAfterPayload[] = "type.unipool/retry-after-ms";
// A hint is at least this long (a hint of 0 would ask for a busy loop) and
// at most this long (what a peer sends is not trusted to be sensible).
inline constexpr int64_t kMinRetryAfterMs = 1;
inline constexpr int64_t kMaxRetryAfterMs = 60'000;

// `status` (an error) with the hint `after`, clamped to the bounds above.
inline absl::Status WithRetryAfter(absl::Status status, absl::Duration after) {
  int64_t ms = std::clamp(absl::ToInt64Milliseconds(after), kMinRetryAfterMs, kMaxRetryAfterMs);
  status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(ms)));
  return status;
}

// The hint on `status`, if it has one.
inline std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);  // absl::optional in Abseil 2022
  if (!payload.has_value()) return std::nullopt;
  std::string text(*payload);
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return absl::Milliseconds(std::clamp(ms, kMinRetryAfterMs, kMaxRetryAfterMs));
}

}  // namespace unipool

#endif  // UNIPOOL_COMMON_RETRY_AFTER_H_
