// Tenants and what each holds. A tenant is a token's prefix; its storage
// and pin quotas come with its token (TenantQuota, common/include/unipool/
// common/auth.h) and are learned when it makes a request. What it holds is
// counted in allocated bytes (an object's length rounded up to the
// allocation unit, times its copies), so a one-byte object costs what it
// takes.
//
// A key belongs to the tenant with the longest prefix it starts with (a
// stripe key to its tensor's or model's name, as authorize.cc reads it);
// keys of no tenant are the cluster key's. Tokens without a prefix are no
// tenant.
//
// The rules it answers (the Directory enforces them):
//   Storage     a put that would take its key's tenant past its storage
//               quota first evicts that tenant's own coldest objects.
//   Protection  an object whose tenant is within a finite storage quota is
//               evicted only for that tenant's own keys: never to make room
//               for another tenant's (or the cluster key's) puts, nor by the
//               watermark sweeps.
//   Pins        a pin that would take a tenant past its pin quota is
//               refused; an object committed under a pin beyond the quota
//               stays unpinned.
//
// Tenants are in memory: after a directory restart a tenant's quotas (and
// so the protection of its objects) return with its first request.
//
// Thread safety: not thread-safe; the directory guards it with its lock.
#ifndef UNIPOOL_DIRECTORY_TENANTS_H_
#define UNIPOOL_DIRECTORY_TENANTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace unipool {

// A tenant's quotas in allocated bytes; 0: unlimited.
struct TenantLimits {
  uint64_t storage_bytes = 0;
  uint64_t pin_bytes = 0;
  bool operator==(const TenantLimits&) const = default;
};

// One tenant as status shows it.
struct TenantUsage {
  std::string prefix;
  TenantLimits limits;
  uint64_t objects = 0;
  uint64_t stored_bytes = 0;  // allocated bytes of its committed objects
  uint64_t pinned_bytes = 0;  // of which pinned
};

class Tenants {
 public:
  // Adds the tenant `prefix` (not empty) or sets its limits. True when it is
  // new: keys may then belong to it rather than to a shorter prefix, so the
  // caller recounts (ResetUsage, then Account for every object).
  bool Learn(std::string_view prefix, TenantLimits limits);
  // Whether `prefix` is known with exactly these limits (nothing to learn).
  bool Knows(std::string_view prefix, TenantLimits limits) const;
  size_t size() const { return tenants_.size(); }

  // The prefix of the tenant `key` belongs to; empty: none.
  std::string_view TenantOf(std::string_view key) const;

  // An object of `bytes` allocated bytes under `key` arrives (+1) or goes
  // (-1), pinned or not.
  void Account(std::string_view key, uint64_t bytes, bool pinned, int sign);
  void ResetUsage();

  // The bytes by which `key`'s tenant would pass its storage quota if it
  // stored `extra` more allocated bytes; 0 when it would not (or has no
  // quota, or no tenant).
  uint64_t StorageExcess(std::string_view key, uint64_t extra) const;
  // Whether the object under `victim` may be evicted to make room for a put
  // of `for_key` (empty: the pool's own sweeps).
  bool MayEvictFor(std::string_view victim, std::string_view for_key) const;
  // OK when `key`'s tenant may pin `extra` more allocated bytes;
  // ResourceExhausted naming the tenant, its pins and its quota otherwise.
  absl::Status CheckPin(std::string_view key, uint64_t extra) const;
  // Every tenant, by prefix.
  std::vector<TenantUsage> Usage() const;

 private:
  struct Tenant {
    TenantLimits limits;
    uint64_t objects = 0;
    uint64_t stored = 0;
    uint64_t pinned = 0;
  };
  const Tenant* Find(std::string_view key) const;
  Tenant* Find(std::string_view key) {
    return const_cast<Tenant*>(static_cast<const Tenants*>(this)->Find(key));
  }
  // Within a finite storage quota: its objects are not evicted for others.
  static bool Protected(const Tenant& tenant) {
    return tenant.limits.storage_bytes != 0 && tenant.stored <= tenant.limits.storage_bytes;
  }

  absl::flat_hash_map<std::string, Tenant> tenants_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_TENANTS_H_
