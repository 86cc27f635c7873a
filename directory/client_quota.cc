#include "unipool/directory/client_quota.h"

#include "absl/strings/str_format.h"
#include "unipool/common/units.h"

namespace unipool {

absl::Status ClientQuota::Check(std::string_view owner, uint64_t bytes, uint64_t capacity,
                                uint64_t limit) const {
  if (owner.empty()) return absl::OkStatus();
  Usage usage;
  if (auto it = usage_.find(std::string(owner)); it != usage_.end()) usage = it->second;
  uint64_t allowed =
      limit != 0
          ? limit
          : static_cast<uint64_t>(limits_.max_reserved_share * static_cast<double>(capacity));
  if (usage.puts + 1 > limits_.max_pending_puts || usage.bytes + bytes > allowed) {
    std::string whose =
        limit != 0 ? "its token's reservation quota"
                   : absl::StrFormat("%.0f%% of the pool", 100 * limits_.max_reserved_share);
    return absl::ResourceExhaustedError(absl::StrFormat(
        "client %s holds %u uncommitted puts of %s allocated; its quota is %u puts and %s (%s): "
        "commit or abort them first",
        owner, usage.puts, FormatSize(usage.bytes), limits_.max_pending_puts, FormatSize(allowed),
        whose));
  }
  return absl::OkStatus();
}

void ClientQuota::Charge(std::string_view owner, uint64_t bytes) {
  if (owner.empty()) return;
  Usage& usage = usage_[std::string(owner)];
  usage.bytes += bytes;
  ++usage.puts;
}

void ClientQuota::Refund(std::string_view owner, uint64_t bytes) {
  // Nothing charged: no owner, or a reservation read back after a restart
  // (its cost is not persisted: 0 bytes) whose owner may have been charged
  // for other puts since.
  if (owner.empty() || bytes == 0) return;
  auto it = usage_.find(std::string(owner));
  if (it == usage_.end()) return;  // charged before a restart: nothing to refund
  it->second.bytes -= std::min(bytes, it->second.bytes);
  if (it->second.puts > 0) --it->second.puts;
  if (it->second.puts == 0) usage_.erase(it);
}

}  // namespace unipool
