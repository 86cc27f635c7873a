// Space each client holds reserved but not yet committed (PutStart without
// PutCommit), bounded so that one client cannot reserve the pool full, force
// everyone else's objects out by eviction and keep it full.
//
// A client is who the directory service says it is: a token's tenant (its
// prefix); the cluster key's holders are not limited. Not thread-safe: the
// Directory guards it with its lock.
#ifndef UNIPOOL_DIRECTORY_CLIENT_QUOTA_H_
#define UNIPOOL_DIRECTORY_CLIENT_QUOTA_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace unipool {

struct ClientQuotaLimits {
  // Reserved bytes one client may hold, as a share of the live pool's
  // capacity. Default 0.5.
  double max_reserved_share = 0.5;
  // Reservations one client may hold at once. Default 65536 (four full
  // batches).
  uint64_t max_pending_puts = 65536;
};

class ClientQuota {
 public:
  explicit ClientQuota(ClientQuotaLimits limits) : limits_(limits) {}

  // OK when `owner` may reserve `bytes` more in a pool of `capacity` bytes;
  // ResourceExhausted naming the client and its holdings otherwise. An empty
  // owner is not limited (the directory's own work). `limit`: the owner's
  // own quota in bytes (its token's); 0: max_reserved_share of `capacity`.
  // Bytes are what the caller charges: allocated bytes (the directory rounds
  // each copy up to the allocation unit).
  absl::Status Check(std::string_view owner, uint64_t bytes, uint64_t capacity,
                     uint64_t limit = 0) const;
  void Charge(std::string_view owner, uint64_t bytes);
  void Refund(std::string_view owner, uint64_t bytes);

 private:
  struct Usage {
    uint64_t bytes = 0;
    uint64_t puts = 0;
  };
  const ClientQuotaLimits limits_;
  absl::flat_hash_map<std::string, Usage> usage_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_CLIENT_QUOTA_H_
