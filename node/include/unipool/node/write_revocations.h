// Write capabilities the directory has ended before their expiry: a put's
// capabilities end when it is committed or aborted (FORMATS.md, "Write
// capabilities end at commit"), and the node refuses them from then on, so
// that memory the directory frees early (an object evicted or removed just
// after its put) cannot be written with them once it holds another
// tenant's object.
//
// A capability is known by its MAC (the directory's HMAC over its slab,
// range, access and expiry), so revoking one leaves every other capability
// for the same range working, the next put's included. Each is kept until
// it would have expired anyway (plus the clock skew), and the list is
// bounded: when it is full a revocation is refused, and the directory then
// holds the memory until the capability expires instead.
//
// A write already under way when its capability is revoked may still be
// copying its payload: Revoke waits for it (writes announce themselves with
// BeginWrite and EndWrite), so once the directory has its answer no byte of
// that capability lands in the slab.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_NODE_WRITE_REVOCATIONS_H_
#define UNIPOOL_NODE_WRITE_REVOCATIONS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

class WriteRevocations {
 public:
  // At most this many capabilities at once (about 64 bytes each).
  static constexpr size_t kDefaultMaxEntries = size_t{1} << 20;
  // A capability whose expiry lies further ahead is not kept so long: the
  // directory issues none (a reservation lasts --put-timeout), so it can
  // only be a mistake, and the bound keeps every entry's life short.
  static constexpr absl::Duration kLongestKept = absl::Hours(1);

  explicit WriteRevocations(size_t max_entries = kDefaultMaxEntries) : max_entries_(max_entries) {}

  // How long Revoke waits for writes under way (their payload arrives
  // within the server's I/O timeout).
  static constexpr absl::Duration kLongestWriteWait = absl::Seconds(35);

  // Refuses `capabilities` from now on (those already expired at `now` are
  // skipped), then waits until no write with one of them is under way.
  // All or none: ResourceExhausted when they do not all fit;
  // DeadlineExceeded when a write did not finish in kLongestWriteWait.
  absl::Status Revoke(std::span<const Capability> capabilities, absl::Time now);
  // Whether `capability` was revoked.
  bool Revoked(const Capability& capability) const;
  // A write with `capabilities` starts: false (and nothing started) when
  // one of them is revoked. Each true needs one EndWrite with the same.
  bool BeginWrite(std::span<const Capability> capabilities);
  void EndWrite(std::span<const Capability> capabilities);
  size_t size() const;

 private:
  using Mac = std::array<uint8_t, 32>;
  struct MacHash {
    size_t operator()(const Mac& mac) const;
  };
  struct Kept {
    Mac mac;
    int64_t until_unix_ms;
  };
  // Forgets what ended before `now_ms`, oldest first.
  void Forget(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<Mac, int64_t, MacHash> revoked_ ABSL_GUARDED_BY(mu_);  // mac -> kept until
  // In the order revoked; ends mostly grow with it (a directory's
  // reservations all last --put-timeout), so the front ends first.
  std::deque<Kept> order_ ABSL_GUARDED_BY(mu_);
  // Writes under way, by capability.
  absl::flat_hash_map<Mac, int, MacHash> writing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_WRITE_REVOCATIONS_H_
