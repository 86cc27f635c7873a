// Directory: tenants (tenants.h). Learning a tenant's quotas, making room
// within a tenant's storage quota from its own coldest objects, and which
// objects another tenant's put or the sweeps may evict.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {

void Directory::LearnTenant(std::string_view prefix, uint64_t storage_bytes, uint64_t pin_bytes) {
  if (prefix.empty()) return;
  TenantLimits limits{storage_bytes != 0 ? storage_bytes : options_.tenant_storage_bytes,
                      pin_bytes != 0 ? pin_bytes : options_.tenant_pin_bytes};
  {
    absl::ReaderMutexLock lock(&mu_);
    if (tenants_.Knows(prefix, limits)) return;
  }
  ExclusiveLock lock(this);
  if (!tenants_.Learn(prefix, limits)) return;
  // Keys under the new prefix may have counted for a shorter one.
  tenants_.ResetUsage();
  for (const auto& [key, entry] : objects_) {
    tenants_.Account(key, RoundUpToAllocation(entry.length) * CopiesOf(entry).size(),
                     entry.pinned(), +1);
  }
  LogInfo("tenant '%s': storage quota %s, pin quota %s", PrintableKey(prefix),
          limits.storage_bytes == 0 ? "unlimited" : FormatSize(limits.storage_bytes),
          limits.pin_bytes == 0 ? "unlimited" : FormatSize(limits.pin_bytes));
}

bool Directory::MayEvictFor(const ObjectEntry& victim, std::string_view for_key) const {
  return tenants_.MayEvictFor(victim.key(), for_key);
}

absl::Status Directory::MakeTenantRoom(std::string_view key, uint64_t extra) {
  uint64_t excess = tenants_.StorageExcess(key, extra);
  if (excess == 0) return absl::OkStatus();
  std::string_view tenant = tenants_.TenantOf(key);
  int64_t now_ms = NowMs();
  std::vector<std::string> victims;
  uint64_t freed = 0;
  uint64_t leased = 0;  // bytes of its objects that are leased now
  int64_t first_lease_end = 0;
  for (const ObjectEntry* e = objects_.ColdestEvictable(); e != nullptr && freed < excess;
       e = ObjectTable::Hotter(*e)) {
    if (tenants_.TenantOf(e->key()) != tenant) continue;
    uint64_t bytes = RoundUpToAllocation(e->length) * CopiesOf(*e).size();
    if (int64_t until = e->lease_until_unix_ms(); until > now_ms) {
      first_lease_end = leased == 0 ? until : std::min(first_lease_end, until);
      leased += bytes;
      continue;
    }
    victims.push_back(e->key());
    freed += bytes;
  }
  if (freed < excess && freed + leased >= excess) {
    // Its own leased objects make room once their leases end: wait.
    return PoolFullForNow(
        absl::StrFormat("tenant '%s' is at its storage quota: '%s' needs %s more",
                        PrintableKey(tenant), PrintableKey(key), FormatSize(excess)),
        first_lease_end, now_ms);
  }
  if (freed < excess) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "tenant '%s' is at its storage quota: '%s' needs %s more, and too few of its objects "
        "could make room (the rest is pinned or leased, or the put is larger than the quota): "
        "remove some, or ask for a token with a larger --quota",
        PrintableKey(tenant), PrintableKey(key), FormatSize(excess)));
  }
  RETURN_IF_ERROR(EvictObjects(victims));
  LogInfo("evicted %u objects (%s) of tenant '%s' to keep it within its storage quota",
          victims.size(), FormatSize(freed), PrintableKey(tenant));
  return absl::OkStatus();
}

void Directory::EvictTenantsOverQuota() {
  for (const TenantUsage& tenant : tenants_.Usage()) {
    if (tenant.limits.storage_bytes == 0 || tenant.stored_bytes <= tenant.limits.storage_bytes) {
      continue;
    }
    // What cannot go now (pinned, leased) is tried again at the next tick.
    MakeTenantRoom(tenant.prefix, 0).IgnoreError();
  }
}

absl::Status Directory::CheckPinQuotas(std::string_view key, bool prefix) {
  // The allocated bytes this pin would add, per tenant (a key pin: one).
  absl::flat_hash_map<std::string, std::pair<std::string, uint64_t>> added;
  auto add = [&](const std::string& k, const ObjectEntry& entry) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (entry.pinned()) return;
    auto& [example, bytes] = added[std::string(tenants_.TenantOf(k))];
    if (example.empty()) example = k;
    bytes += RoundUpToAllocation(entry.length) * CopiesOf(entry).size();
  };
  if (!prefix) {
    if (auto it = objects_.find(key); it != objects_.end()) add(it->first, it->second);
  } else {
    for (const auto& [k, entry] : objects_) {
      if (KeyStartsWith(k, key)) add(k, entry);
    }
  }
  for (const auto& [tenant, example_bytes] : added) {
    RETURN_IF_ERROR(tenants_.CheckPin(example_bytes.first, example_bytes.second));
  }
  return absl::OkStatus();
}

}  // namespace unipool
