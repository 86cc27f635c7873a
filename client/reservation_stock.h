// The pre-handed reservations a client holds for its next puts (see the
// directory's "Pre-handed reservations"): space a PutCommit reply reserved
// without a key. A put of a shape in stock writes its bytes at once and
// names its key in its commit: one directory round trip instead of two.
//
// Shapes are asked for only once they repeat (a put of a shape this client
// has put before), so that one-off sizes do not hold space that nobody will
// use; unused reservations are dropped when they come near their deadline
// and expire at the directory.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_CLIENT_RESERVATION_STOCK_H_
#define UNIPOOL_CLIENT_RESERVATION_STOCK_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

// Reservations of `length` bytes with `replicas` copies.
struct PutShape {
  uint64_t length = 0;
  int replicas = 1;
  bool operator==(const PutShape&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const PutShape& s) {
    return H::combine(std::move(h), s.length, s.replicas);
  }
};

struct PrehandedReservation {
  uint64_t put_id = 0;
  uint64_t version = 0;  // the object's once committed
  std::vector<CopyLocation> copies;
  absl::Time use_before;  // then too close to the directory's deadline
};

class ReservationStock {
 public:
  // At most this many held (the directory caps what it hands out too).
  static constexpr uint64_t kMaxHeld = 1024;
  static constexpr uint64_t kMaxHeldBytes = 256ull << 20;
  // Shapes remembered as put before; past this the memory starts over.
  static constexpr size_t kMaxShapesSeen = 256;

  // A reservation of `shape` good at `now`, if one is held (older ones are
  // dropped: they expire at the directory).
  std::optional<PrehandedReservation> Take(PutShape shape, absl::Time now);
  void Add(PutShape shape, PrehandedReservation reservation);
  // How many of each shape to ask for, given that the chunk just put had
  // `put` items of each: as many again, for the shapes put before this
  // chunk, within kMaxHeld / kMaxHeldBytes. Remembers the shapes.
  std::vector<std::pair<PutShape, uint32_t>> Wanted(
      const absl::flat_hash_map<PutShape, uint32_t>& put);
  // Drops every reservation and returns their put ids (to abort).
  std::vector<uint64_t> Clear();
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<PutShape, std::deque<PrehandedReservation>> held_ ABSL_GUARDED_BY(mu_);
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<PutShape> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_RESERVATION_STOCK_H_
