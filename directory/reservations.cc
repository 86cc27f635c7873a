#include "unipool/directory/reservations.h"

#include <algorithm>

#include "unipool/common/auth.h"

namespace unipool {
namespace {

bool IsPrehanded(const PendingPut& pending) { return pending.holder != 0 && pending.key.empty(); }

}  // namespace

PendingPut* Reservations::Find(uint64_t put_id) {
  auto it = pending_.find(put_id);
  return it == pending_.end() ? nullptr : &it->second;
}

bool Reservations::MayPrehand(const Committer& who, uint64_t bytes, uint64_t capacity) const {
  uint64_t max_bytes = std::min(kMaxPrehandedBytesPerClient, capacity / kPrehandedCapacityShare);
  Prehanded out;
  if (auto it = prehanded_.find(who.client_id); it != prehanded_.end()) out = it->second;
  return out.count < kMaxPrehandedPerClient && out.bytes + bytes <= max_bytes &&
         quota_.Check(who.owner, bytes, capacity, who.reservation_limit).ok();
}

uint64_t Reservations::NewPutId() const {
  // Drawn again on a clash with a live reservation (about 2^-64 per draw,
  // or an id from before ids were random): that would hand one client's put
  // to another.
  uint64_t id = RandomU64();
  while (id == 0 || pending_.contains(id)) id = RandomU64();
  return id;
}

const PendingPut& Reservations::Add(PendingPut pending) {
  pending.put_id = NewPutId();
  quota_.Charge(pending.owner, pending.quota_bytes);
  if (IsPrehanded(pending)) {
    Prehanded& out = prehanded_[pending.holder];
    ++out.count;
    out.bytes += pending.quota_bytes;
  }
  uint64_t id = pending.put_id;
  return pending_.emplace(id, std::move(pending)).first->second;
}

void Reservations::Restore(PendingPut pending) {
  uint64_t id = pending.put_id;
  pending_.emplace(id, std::move(pending));
}

std::optional<PendingPut> Reservations::Take(uint64_t put_id) {
  auto it = pending_.find(put_id);
  if (it == pending_.end()) return std::nullopt;
  PendingPut taken = std::move(it->second);
  pending_.erase(it);
  Refund(taken);
  return taken;
}

void Reservations::Refund(const PendingPut& pending) {
  quota_.Refund(pending.owner, pending.quota_bytes);
  if (!IsPrehanded(pending)) return;
  auto out = prehanded_.find(pending.holder);
  if (out == prehanded_.end()) return;
  out->second.count -= std::min<uint64_t>(out->second.count, 1);
  out->second.bytes -= std::min(out->second.bytes, pending.quota_bytes);
  if (out->second.count == 0) prehanded_.erase(out);
}

std::vector<uint64_t> Reservations::ExpiredBy(int64_t now_unix_ms) const {
  std::vector<uint64_t> expired;
  for (const auto& [id, pending] : pending_) {
    if (pending.deadline_unix_ms < now_unix_ms) expired.push_back(id);
  }
  return expired;
}

std::vector<uint64_t> Reservations::WithCopyOn(NodeId node) const {
  std::vector<uint64_t> ids;
  for (const auto& [id, pending] : pending_) {
    for (const ObjectCopy& copy : CopiesOf(pending)) {
      if (copy.node_id == node) ids.push_back(id);
    }
  }
  return ids;
}

std::optional<int64_t> Reservations::EarliestDeadline(const std::function<bool(NodeId)>& on) const {
  std::optional<int64_t> earliest;
  for (const auto& [id, pending] : pending_) {
    if (earliest.has_value() && pending.deadline_unix_ms >= *earliest) continue;
    for (const ObjectCopy& copy : CopiesOf(pending)) {
      if (on(copy.node_id)) {
        earliest = pending.deadline_unix_ms;
        break;
      }
    }
  }
  return earliest;
}

}  // namespace unipool
