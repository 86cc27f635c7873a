#include "unipool/node/write_revocations.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/common/capability.h"

namespace unipool {

size_t WriteRevocations::MacHash::operator()(const Mac& mac) const {
  // A MAC is uniformly random: its first bytes are a good hash.
  size_t h;
  std::memcpy(&h, mac.data(), sizeof(h));
  return h;
}

absl::Status WriteRevocations::Revoke(std::span<const Capability> capabilities, absl::Time now) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  const int64_t skew_ms = absl::ToInt64Milliseconds(kCapabilityClockSkew);
  const int64_t latest_ms = now_ms + absl::ToInt64Milliseconds(kLongestKept);
  absl::MutexLock lock(&mu_);
  Forget(now_ms);
  if (revoked_.size() + capabilities.size() > max_entries_) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot revoke %u write capabilities: %u are revoked already, the most a node keeps is %u",
        capabilities.size(), revoked_.size(), max_entries_));
  }
  for (const Capability& capability : capabilities) {
    // Checks honour an expiry this much after it passes.
    int64_t until = std::min(capability.expires_unix_ms + skew_ms, latest_ms);
    if (until < now_ms) continue;
    auto [it, added] = revoked_.try_emplace(capability.mac, until);
    if (!added) continue;  // revoked twice (a retried request)
    order_.push_back({capability.mac, until});
  }
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const Capability& capability : capabilities) {
      if (writing_.contains(capability.mac)) return false;
    }
    return true;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&settled), kLongestWriteWait)) {
    return absl::DeadlineExceededError(absl::StrFormat(
        "revoked %u write capabilities, but a write with one of them is still under way after %s",
        capabilities.size(), absl::FormatDuration(kLongestWriteWait)));
  }
  return absl::OkStatus();
}

bool WriteRevocations::BeginWrite(std::span<const Capability> capabilities) {
  absl::MutexLock lock(&mu_);
  for (const Capability& capability : capabilities) {
    if (revoked_.contains(capability.mac)) return false;
  }
  for (const Capability& capability : capabilities) ++writing_[capability.mac];
  return true;
}

void WriteRevocations::EndWrite(std::span<const Capability> capabilities) {
  absl::MutexLock lock(&mu_);
  for (const Capability& capability : capabilities) {
    auto it = writing_.find(capability.mac);
    if (it != writing_.end() && --it->second == 0) writing_.erase(it);
  }
}

bool WriteRevocations::Revoked(const Capability& capability) const {
  absl::ReaderMutexLock lock(&mu_);
  return revoked_.contains(capability.mac);
}

size_t WriteRevocations::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return revoked_.size();
}

void WriteRevocations::Forget(int64_t now_ms) {
  // An entry behind one that ends later waits for it: kept a little longer
  // than needed, never shorter.
  while (!order_.empty() && order_.front().until_unix_ms < now_ms) {
    revoked_.erase(order_.front().mac);
    order_.pop_front();
  }
}

}  // namespace unipool
