#include "unipool/directory/tenants.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"
#include "unipool/common/units.h"
#include "unipool/tensor/records.h"

namespace unipool {
namespace {

std::string QuotaText(uint64_t bytes) { return bytes == 0 ? "unlimited" : FormatSize(bytes); }

}  // namespace

bool Tenants::Learn(std::string_view prefix, TenantLimits limits) {
  if (prefix.empty()) return false;  // a token for every key is no tenant
  auto [it, inserted] = tenants_.try_emplace(std::string(prefix));
  it->second.limits = limits;
  return inserted;
}

bool Tenants::Knows(std::string_view prefix, TenantLimits limits) const {
  auto it = tenants_.find(std::string(prefix));
  return it != tenants_.end() && it->second.limits == limits;
}

std::string_view Tenants::TenantOf(std::string_view key) const {
  // Tenants are few (one per token prefix an operator made): a scan.
  std::string_view scoped = StripeKeyScope(key).value_or(key);
  std::string_view best;  // prefixes are never empty (Learn)
  for (const auto& [prefix, tenant] : tenants_) {
    if (prefix.size() > best.size() && scoped.substr(0, prefix.size()) == prefix) best = prefix;
  }
  return best;
}

const Tenants::Tenant* Tenants::Find(std::string_view key) const {
  std::string_view prefix = TenantOf(key);
  if (prefix.empty()) return nullptr;
  auto it = tenants_.find(std::string(prefix));
  return it == tenants_.end() ? nullptr : &it->second;
}

void Tenants::Account(std::string_view key, uint64_t bytes, bool pinned, int sign) {
  Tenant* tenant = Find(key);
  if (tenant == nullptr) return;
  auto add = [sign](uint64_t& counter, uint64_t amount) {
    counter = sign > 0 ? counter + amount : counter - std::min(counter, amount);
  };
  add(tenant->objects, 1);
  add(tenant->stored, bytes);
  if (pinned) add(tenant->pinned, bytes);
}

void Tenants::ResetUsage() {
  for (auto& [prefix, tenant] : tenants_) tenant.objects = tenant.stored = tenant.pinned = 0;
}

uint64_t Tenants::StorageExcess(std::string_view key, uint64_t extra) const {
  const Tenant* tenant = Find(key);
  if (tenant == nullptr || tenant->limits.storage_bytes == 0) return 0;
  uint64_t after = tenant->stored + extra;
  return after > tenant->limits.storage_bytes ? after - tenant->limits.storage_bytes : 0;
}

bool Tenants::MayEvictFor(std::string_view victim, std::string_view for_key) const {
  std::string_view owner = TenantOf(victim);
  if (owner.empty()) return true;  // the cluster key's: no quota protects it
  if (!for_key.empty() && TenantOf(for_key) == owner) return true;  // its own puts
  const Tenant* tenant = Find(victim);
  return tenant == nullptr || !Protected(*tenant);
}

absl::Status Tenants::CheckPin(std::string_view key, uint64_t extra) const {
  const Tenant* tenant = Find(key);
  if (tenant == nullptr || tenant->limits.pin_bytes == 0 ||
      tenant->pinned + extra <= tenant->limits.pin_bytes) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "pin of '%s' refused: tenant '%s' pins %s and this would add %s, over its pin quota of %s "
      "(unpin something first, or ask for a token with a larger --pin-quota)",
      PrintableKey(key), PrintableKey(TenantOf(key)), FormatSize(tenant->pinned), FormatSize(extra),
      QuotaText(tenant->limits.pin_bytes)));
}

std::vector<TenantUsage> Tenants::Usage() const {
  std::vector<TenantUsage> usage;
  usage.reserve(tenants_.size());
  for (const auto& [prefix, tenant] : tenants_) {
    usage.push_back({prefix, tenant.limits, tenant.objects, tenant.stored, tenant.pinned});
  }
  std::sort(usage.begin(), usage.end(),
            [](const TenantUsage& a, const TenantUsage& b) { return a.prefix < b.prefix; });
  return usage;
}

}  // namespace unipool
