// A thin client of etcd's v3 API through its JSON gateway (etcd 3.4: POST
// /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke, /v3/kv/range,
// /v3/kv/txn, /v3/kv/deleterange), over plain HTTP with cpp-httplib.
//
// Only what leader election needs. Every response is untrusted: a body over
// 1 MiB, JSON that is not the expected shape, a number that is not a
// non-negative int64, or base64 that does not decode is an error (Internal:
// "etcd at URL answered ..."), never a crash or a guess.
//
// Errors: Unavailable when no endpoint could be reached or every one timed
// out (retry); FailedPrecondition when etcd refused the request (its code
// and message are in the text); NotFound for a lease etcd does not know.
//
// Thread safety: thread-safe; each call opens its own HTTP connection.
#ifndef UNIPOOL_ELECTION_ETCD_CLIENT_H_
#define UNIPOOL_ELECTION_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace unipool {

struct EtcdOptions {
  // Client URLs of the etcd members, "http://HOST:PORT" (the scheme may be
  // left out). Tried in turn; the last one that answered is tried first.
  std::vector<std::string> endpoints;
  // Bound on connecting to and hearing back from one member. Default 1 s:
  // the election's renewals must fail well within a lease's TTL.
  absl::Duration request_timeout = absl::Seconds(1);
};

// One key as etcd holds it.
struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // the revision that created it (its term, for a leader key)
  int64_t mod_revision = 0;
  int64_t lease = 0;  // 0: none
};

// A read, with the store's revision when etcd answered.
struct EtcdGetResult {
  int64_t revision = 0;
  std::optional<EtcdKeyValue> kv;  // empty: no such key
};

// A create-if-absent: either we created it, or `holder` is who holds it.
struct EtcdCreateResult {
  bool created = false;
  int64_t revision = 0;  // created: the key's create revision
  EtcdKeyValue holder;   // not created: the key as it is
};

class EtcdClient {
 public:
  // InvalidArgument when an endpoint is not an http://HOST:PORT URL.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);

  // A new lease of `ttl` (whole seconds, at least 1); returns its id and the
  // TTL etcd granted (it may round it up).
  struct Lease {
    int64_t id = 0;
    absl::Duration ttl;
  };
  absl::StatusOr<Lease> GrantLease(absl::Duration ttl);
  // Renews `lease` once; returns the TTL it now has from etcd's receipt of
  // the request. NotFound when the lease has expired or was revoked.
  absl::StatusOr<absl::Duration> KeepAlive(int64_t lease);
  // Revokes `lease`, deleting every key attached to it. NotFound when gone.
  absl::Status RevokeLease(int64_t lease);

  absl::StatusOr<EtcdGetResult> Get(std::string_view key);
  // Creates `key` = `value` attached to `lease` only if no such key exists,
  // in one transaction.
  absl::StatusOr<EtcdCreateResult> CreateIfAbsent(std::string_view key, std::string_view value,
                                                  int64_t lease);
  // Deletes `key` only if its create revision is still `create_revision`
  // (never someone else's newer key); returns whether it deleted it.
  absl::StatusOr<bool> DeleteIfCreated(std::string_view key, int64_t create_revision);
  // Deletes `key` whatever it holds; returns how many keys were deleted (0 or 1).
  absl::StatusOr<int64_t> Delete(std::string_view key);

  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  EtcdClient(std::vector<std::string> endpoints, absl::Duration timeout)
      : endpoints_(std::move(endpoints)), timeout_(timeout) {}

  // POSTs `body` to `path` on each endpoint in turn until one answers;
  // returns the parsed-later text of the reply.
  absl::StatusOr<std::string> Post(std::string_view path, const std::string& body);
  absl::StatusOr<std::string> PostTo(size_t endpoint, std::string_view path,
                                     const std::string& body);

  const std::vector<std::string> endpoints_;  // "host:port"
  const absl::Duration timeout_;
  absl::Mutex mutex_;
  size_t preferred_ ABSL_GUARDED_BY(mutex_) = 0;
};

// Splits "a,b,c" into endpoint URLs; InvalidArgument for an empty list or entry.
absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(std::string_view list);

}  // namespace unipool

#endif  // UNIPOOL_ELECTION_ETCD_CLIENT_H_
