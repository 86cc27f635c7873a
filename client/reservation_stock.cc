#include "reservation_stock.h"

#include <algorithm>

namespace unipool {
namespace {

uint64_t BytesOf(PutShape shape) { return shape.length * static_cast<uint64_t>(shape.replicas); }

}  // namespace

std::optional<PrehandedReservation> ReservationStock::Take(PutShape shape, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(shape);
  if (it == held_.end()) return std::nullopt;
  std::optional<PrehandedReservation> taken;
  std::deque<PrehandedReservation>& queue = it->second;
  while (!queue.empty() && !taken.has_value()) {
    if (queue.front().use_before > now) taken = std::move(queue.front());
    queue.pop_front();
    --count_;
    bytes_ -= BytesOf(shape);
  }
  if (queue.empty()) held_.erase(it);
  return taken;
}

void ReservationStock::Add(PutShape shape, PrehandedReservation reservation) {
  absl::MutexLock lock(&mu_);
  held_[shape].push_back(std::move(reservation));
  ++count_;
  bytes_ += BytesOf(shape);
}

std::vector<std::pair<PutShape, uint32_t>> ReservationStock::Wanted(
    const absl::flat_hash_map<PutShape, uint32_t>& put) {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<PutShape, uint32_t>> wanted;
  uint64_t count = count_;
  uint64_t bytes = bytes_;
  if (seen_.size() + put.size() > kMaxShapesSeen) seen_.clear();
  for (const auto& [shape, n] : put) {
    if (!seen_.insert(shape).second) {
      // As many as were just used, whatever is held: with several threads
      // putting, the stock grows to what they use together.
      uint64_t room = std::min(kMaxHeld - std::min(kMaxHeld, count),
                               (kMaxHeldBytes - std::min(kMaxHeldBytes, bytes)) / BytesOf(shape));
      uint64_t ask = std::min<uint64_t>(n, room);
      if (ask == 0) continue;
      wanted.push_back({shape, static_cast<uint32_t>(ask)});
      count += ask;
      bytes += ask * BytesOf(shape);
    }
  }
  return wanted;
}

std::vector<uint64_t> ReservationStock::Clear() {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> ids;
  for (auto& [shape, queue] : held_) {
    for (const PrehandedReservation& r : queue) ids.push_back(r.put_id);
  }
  held_.clear();
  count_ = 0;
  bytes_ = 0;
  return ids;
}

size_t ReservationStock::size() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

}  // namespace unipool
