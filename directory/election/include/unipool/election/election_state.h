// The term and fencing logic of one directory's leader election, apart from
// etcd and threads so that unit tests drive it with a fake clock.
//
// Term: the etcd create revision of the leader key the leader created.
// Revisions only grow, so a later leader always has a higher term, and a
// term seen once is never accepted again as ours.
//
// Fencing: etcd expires a lease TTL after it last heard a renewal, counted
// from when etcd received it. We count from when we sent it, which is
// earlier, and stop `safety_margin` before that (clock-rate drift, the time
// to notice): so a leader stops acknowledging before its lease can expire,
// and therefore before anyone else can be elected. A process paused past
// its deadline (SIGSTOP, a stalled VM) finds on waking that it may not
// acknowledge, without having to talk to anyone.
//
// Thread safety: not thread-safe; LeaderElection holds it under its mutex.
#ifndef UNIPOOL_ELECTION_ELECTION_STATE_H_
#define UNIPOOL_ELECTION_ELECTION_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace unipool {

enum class ElectionRole { kCandidate, kLeader };

class ElectionState {
 public:
  // REQUIRES: safety_margin >= 0.
  explicit ElectionState(absl::Duration safety_margin) : margin_(safety_margin) {}

  // We created the leader key at revision `term` under a lease whose grant
  // was requested at `sent_at` and granted for `ttl`. FailedPrecondition
  // when `term` is not above every term seen (a stale answer), or when the
  // lease leaves no time to lead (ttl <= margin, or already past).
  absl::Status BecomeLeader(int64_t term, absl::Time sent_at, absl::Duration ttl, absl::Time now);
  // A renewal requested at `sent_at` was answered with `ttl` at `now`: etcd
  // keeps the lease until at least sent_at + ttl. Moves the deadline forward
  // only, and only while leader and before the deadline: once past it we
  // have stopped acknowledging, and a late answer does not revive the term
  // (ExpireIfDue ends it; a new term needs a new election).
  void Renewed(absl::Time sent_at, absl::Duration ttl, absl::Time now);

  // Whether this directory may acknowledge a write now: leader, and before
  // the deadline.
  bool MayAcknowledge(absl::Time now) const {
    return role_ == ElectionRole::kLeader && now < deadline_;
  }
  // Past the deadline while leader: steps down and returns the term lost
  // (once); otherwise nothing.
  std::optional<int64_t> ExpireIfDue(absl::Time now);
  // Steps down (resign, lease gone at etcd, key replaced); returns the term
  // given up, or nothing when not leader.
  std::optional<int64_t> StepDown();
  // The leader key as read from etcd (term = its create revision, the
  // address it holds). A term above ours while we lead deposes us: returns
  // our term then.
  std::optional<int64_t> Observe(int64_t term, std::string address);
  // The leader key was absent: no one leads (as far as etcd says).
  void ObserveVacant() { leader_address_.clear(); }

  ElectionRole role() const { return role_; }
  int64_t term() const { return term_; }  // ours, while leader; else 0
  absl::Time deadline() const { return deadline_; }
  int64_t highest_term() const { return highest_term_; }  // the newest leader seen
  const std::string& leader_address() const { return leader_address_; }

 private:
  const absl::Duration margin_;
  ElectionRole role_ = ElectionRole::kCandidate;
  int64_t term_ = 0;
  absl::Time deadline_ = absl::InfinitePast();
  int64_t highest_term_ = 0;
  std::string leader_address_;  // of highest_term_; empty when unknown or gone
};

}  // namespace unipool

#endif  // UNIPOOL_ELECTION_ELECTION_STATE_H_
