// The Directory's private helper types, shared by its .cc files only.
#ifndef UNIPOOL_DIRECTORY_DIRECTORY_INTERNAL_H_
#define UNIPOOL_DIRECTORY_DIRECTORY_INTERNAL_H_

#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "unipool/common/string_map.h"
#include "unipool/directory/directory.h"

namespace unipool {

// The commit gate, then the exclusive side of mu_. Taking mu_ first applies
// the recency touches that lookups queued under the shared side, so nothing
// that orders by recency sees a stale list, and no queued pointer outlives
// its entry (entries are only erased under mu_, after the queue is applied).
class ABSL_SCOPED_LOCKABLE Directory::ExclusiveLock {
 public:
  explicit ExclusiveLock(Directory* directory)
      ABSL_EXCLUSIVE_LOCK_FUNCTION(directory->gate_mu_, directory->mu_)
      : directory_(directory) {
    directory_->gate_mu_.Lock();
    directory_->mu_.Lock();
    directory_->ApplyTouches();
  }
  ~ExclusiveLock() ABSL_UNLOCK_FUNCTION() {
    directory_->mu_.Unlock();
    directory_->gate_mu_.Unlock();
  }
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;

 private:
  Directory* const directory_;
};

// mu_ alone, exclusive, for a commit group's phases (its caller holds the
// gate); applies the queued touches as ExclusiveLock does.
class ABSL_SCOPED_LOCKABLE Directory::CommitPhaseLock {
 public:
  explicit CommitPhaseLock(Directory* directory) ABSL_EXCLUSIVE_LOCK_FUNCTION(directory->mu_)
      : directory_(directory) {
    directory_->mu_.Lock();
    directory_->ApplyTouches();
  }
  ~CommitPhaseLock() ABSL_UNLOCK_FUNCTION() { directory_->mu_.Unlock(); }
  CommitPhaseLock(const CommitPhaseLock&) = delete;
  CommitPhaseLock& operator=(const CommitPhaseLock&) = delete;

 private:
  Directory* const directory_;
};

// Copies of a removed, replaced or moved object to free, or to hold until
// its lease ends (then `held` lists the held extents).
struct Directory::Release {
  std::vector<ObjectCopy> copies;
  uint64_t length = 0;
  std::vector<HeldExtent> held;
};

// A PutCommit group being planned: what is accepted, what is rejected and
// what the accepted commits replace, with the catalog write for all of it.
struct Directory::CommitPlan {
  struct Accepted {
    size_t member;  // the PutCommit call in the group
    size_t index;   // in that call's requests
    uint64_t put_id;
    std::string key;
    ObjectRecord object;
    std::vector<ObjectCopy> unwritten;  // reserved copies the client could not write
  };
  std::vector<Accepted> accepted;
  std::vector<uint64_t> rejected_ids;  // reservations to release
  std::vector<Release> releases;       // of the objects replaced
  absl::flat_hash_set<uint64_t> seen_ids;
  StringViewSet committed_keys;  // accepted so far (views into reservations)
  CatalogBatch batch;
};

// One PutCommit call waiting in the commit queue. Its outcome (results,
// handed, ticket, done) is written by the group's leader under the gate.
struct Directory::QueuedCommit {
  std::span<const CommitRequest> requests;
  Committer who;
  std::span<const ReserveShape> next;  // empty: no pre-handed reservations wanted
  std::vector<absl::Status> results;
  std::vector<Reservation> handed;
  uint64_t ticket = 0;  // the catalog write to await
  bool done = false;
};

// A lookup's use of an entry, applied to the recency lists later.
struct Directory::QueuedTouch {
  ObjectEntry* entry;
  int64_t unix_ms;
};

// What planning one key's move found: nothing to say (planned, or nothing
// to move), no live copy to read (`stuck`), or no room for it (`blocked`).
struct Directory::MoveOutcome {
  bool stuck = false;
  absl::Status blocked;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DIRECTORY_INTERNAL_H_
