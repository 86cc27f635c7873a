// What the directory owes the pool's copies after faults:
//   Verification  a node readmitted with its slab keeps its copies, which are
//                 checksummed (by the service) before they are trusted again;
//                 a failed attempt is planned again.
//   Remakes       an object that lost a copy to a failed checksum is given a
//                 new one (kept in memory: after a restart it stays one copy
//                 short).
//   Repairs       a node down past the re-replication delay has its copies
//                 made again from their other copies, at a bounded byte rate
//                 (a token bucket that banks at most one second).
//   Counts        objects with a copy on a node that is not up, recounted at
//                 most once a second and after every liveness change.
// The Directory plans the copies (placement, held extents); Repairs keeps
// what is owed.
//
// Thread safety: not thread-safe; the directory guards it with its lock.
#ifndef UNIPOOL_DIRECTORY_REPAIRS_H_
#define UNIPOOL_DIRECTORY_REPAIRS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "unipool/directory/directory_types.h"

namespace unipool {

// One object owed a new copy: its key and the version that lost one.
struct Remake {
  std::string key;
  uint64_t version = 0;
};

class Repairs {
 public:
  // Under-replicated objects are recounted at most this often.
  static constexpr int64_t kRecountMs = 1000;

  explicit Repairs(uint64_t bytes_per_second) : bytes_per_second_(bytes_per_second) {}

  // --- verification ---
  // Node `id` was readmitted holding `copies`: they are to be verified
  // (none: nothing to verify). Replaces any verification owed before.
  void Readmitted(NodeId id, std::vector<VerifyItem> copies);
  // Nothing of node `id` is to be verified any more (its slab is gone).
  void ClearVerification(NodeId id) { unverified_.erase(id); }
  bool Unverified(NodeId id) const { return unverified_.contains(id); }
  // A node to verify now, among those `ready` accepts, with the copies to
  // check; it is marked as being verified until StopVerifying.
  std::optional<std::pair<NodeId, std::vector<VerifyItem>>> TakeVerification(
      const std::function<bool(NodeId)>& ready);
  // The verification of `id` came back; false when none was out.
  bool StopVerifying(NodeId id);
  // Its copies are verified: nothing more is owed.
  void Verified(NodeId id) { unverified_.erase(id); }

  // --- remakes ---
  void RemakeLater(Remake remake) { remakes_.push_back(std::move(remake)); }
  std::optional<Remake> NextRemake();
  size_t remakes_owed() const { return remakes_.size(); }

  // --- repairs of nodes down past the delay ---
  // True when `id` was not being repaired (the first repair fills the
  // bucket with one second's bytes).
  bool StartRepair(NodeId id, int64_t now_ms);
  bool EndRepair(NodeId id) { return repairing_.erase(id) > 0; }
  bool Repairing(NodeId id) const { return repairing_.contains(id); }
  // The bytes repairs may plan now; Spend takes what was planned.
  uint64_t Budget(int64_t now_ms);
  void Spend(uint64_t bytes) { tokens_ -= std::min(tokens_, bytes); }
  void CountRereplicated() { ++copies_rereplicated_; }
  uint64_t copies_rereplicated() const { return copies_rereplicated_; }

  // --- the under-replicated count ---
  // Whether to recount now: a second has passed, or nodes changed state.
  bool RecountDue(int64_t now_ms, uint64_t liveness_changes) const;
  void Recounted(uint64_t count, int64_t now_ms, uint64_t liveness_changes);
  // The count, when no liveness change happened since it was made.
  std::optional<uint64_t> UnderReplicated(uint64_t liveness_changes) const;

 private:
  struct Verification {
    std::vector<VerifyItem> copies;  // kept until verified, in case of retry
    bool out = false;                // a VerifyPlan is out
  };

  const uint64_t bytes_per_second_;
  absl::flat_hash_map<NodeId, Verification> unverified_;
  std::deque<Remake> remakes_;
  absl::flat_hash_set<NodeId> repairing_;
  uint64_t tokens_ = 0;
  int64_t refilled_ms_ = 0;
  uint64_t copies_rereplicated_ = 0;
  uint64_t under_replicated_ = 0;
  uint64_t counted_changes_ = 0;
  int64_t next_count_ms_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_REPAIRS_H_
