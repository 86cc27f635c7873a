#include "unipool/directory/repairs.h"

#include <algorithm>

namespace unipool {

void Repairs::Readmitted(NodeId id, std::vector<VerifyItem> copies) {
  if (copies.empty()) {
    unverified_.erase(id);
    return;
  }
  unverified_[id] = Verification{std::move(copies), false};
}

std::optional<std::pair<NodeId, std::vector<VerifyItem>>> Repairs::TakeVerification(
    const std::function<bool(NodeId)>& ready) {
  for (auto& [id, verification] : unverified_) {
    if (verification.out || !ready(id)) continue;
    verification.out = true;
    return std::make_pair(id, verification.copies);
  }
  return std::nullopt;
}

bool Repairs::StopVerifying(NodeId id) {
  auto it = unverified_.find(id);
  if (it == unverified_.end() || !it->second.out) return false;
  it->second.out = false;
  return true;
}

std::optional<Remake> Repairs::NextRemake() {
  if (remakes_.empty()) return std::nullopt;
  Remake next = std::move(remakes_.front());
  remakes_.pop_front();
  return next;
}

bool Repairs::StartRepair(NodeId id, int64_t now_ms) {
  if (repairing_.contains(id)) return false;
  if (repairing_.empty()) {
    tokens_ = bytes_per_second_;
    refilled_ms_ = now_ms;
  }
  repairing_.insert(id);
  return true;
}

uint64_t Repairs::Budget(int64_t now_ms) {
  int64_t elapsed = std::max<int64_t>(0, now_ms - refilled_ms_);
  refilled_ms_ = now_ms;
  // Banks at most one second of rate.
  tokens_ = std::min(bytes_per_second_,
                     tokens_ + bytes_per_second_ / 1000 * static_cast<uint64_t>(elapsed));
  return tokens_;
}

bool Repairs::RecountDue(int64_t now_ms, uint64_t liveness_changes) const {
  return now_ms >= next_count_ms_ || liveness_changes != counted_changes_;
}

void Repairs::Recounted(uint64_t count, int64_t now_ms, uint64_t liveness_changes) {
  under_replicated_ = count;
  next_count_ms_ = now_ms + kRecountMs;
  counted_changes_ = liveness_changes;
}

std::optional<uint64_t> Repairs::UnderReplicated(uint64_t liveness_changes) const {
  if (liveness_changes != counted_changes_) return std::nullopt;
  return under_replicated_;
}

}  // namespace unipool
