// Leader election of the directories of one pool through etcd.
//
// Every directory campaigns for the key /unipool/<pool>/leader, created only
// if absent and attached to a lease of `lease_ttl`; its value is the
// directory's address, so clients and peers can find the leader. The one
// that created it leads, with term = the key's create revision (higher for
// every later leader). The leader renews its lease every `renew_interval`
// and checks the key is still its own; candidates read the key every
// `campaign_poll` and campaign when it is gone.
//
// Fencing (election_state.h): LeaderTerm() answers a term only before the
// local deadline (lease TTL minus `safety_margin`, counted from the send of
// the last renewal that etcd answered), so a leader that cannot renew (etcd
// unreachable, its process paused) stops acknowledging before its lease can
// expire and another can be elected. Callers check LeaderTerm() right before
// acknowledging anything.
//
// Thread safety: thread-safe. The callbacks run on the election's own
// thread (or on Resign's caller), never under its lock; they must not call
// Stop().
#ifndef UNIPOOL_ELECTION_LEADER_ELECTION_H_
#define UNIPOOL_ELECTION_LEADER_ELECTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/election/clock.h"
#include "unipool/election/election_state.h"
#include "unipool/election/etcd_client.h"

namespace unipool {

struct ElectionOptions {
  // The pool's name: the leader key is /unipool/<pool>/leader. Default
  // "default"; 1-128 characters of [A-Za-z0-9._-].
  std::string pool = "default";
  // This directory's HOST:PORT, the leader key's value. Required.
  std::string address;
  // The lease's TTL (whole seconds). Default 5 s: a dead leader is replaced
  // within about this long; shorter means more renewals and more risk that
  // a slow etcd deposes a healthy leader.
  absl::Duration lease_ttl = absl::Seconds(5);
  // How often the leader renews. Default 1 s; must leave the TTL minus the
  // margin room for two renewals.
  absl::Duration renew_interval = absl::Seconds(1);
  // How often a candidate reads the leader key. Default 100 ms: a handover
  // (Resign) is taken up within about this long.
  absl::Duration campaign_poll = absl::Milliseconds(100);
  // Stop acknowledging this long before the lease could expire. Default 1 s.
  absl::Duration safety_margin = absl::Seconds(1);
  // After Resign, do not campaign for this long, so another takes over.
  // Default 2 s.
  absl::Duration resign_holdoff = absl::Seconds(2);
  // Called with our term when we become leader.
  std::function<void(int64_t term)> on_elected;
  // Called with the term we lost and why, when we stop leading.
  std::function<void(int64_t term, std::string_view why)> on_deposed;
};

// What the election knows, for status pages.
struct ElectionView {
  ElectionRole role = ElectionRole::kCandidate;
  int64_t term = 0;            // ours while leader
  std::string leader_address;  // the current leader as last read; empty: none known
  int64_t leader_term = 0;     // its term (the highest seen)
  absl::Duration lease_left;   // leader: time before we stop acknowledging
};

class LeaderElection {
 public:
  // Checks the options and starts campaigning on a thread of its own.
  // InvalidArgument for a bad pool name, an empty address, or timings that
  // leave no room to renew. `etcd` and `clock` must outlive the election.
  static absl::StatusOr<std::unique_ptr<LeaderElection>> Start(EtcdClient* etcd,
                                                               ElectionOptions options,
                                                               Clock* clock = SteadyClock());
  ~LeaderElection();  // Stop()
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  // Our term while we may acknowledge writes; nothing otherwise.
  std::optional<int64_t> LeaderTerm() const;
  ElectionView View() const;
  // Steps down now (the lock is released and the key deleted before it
  // returns, so another candidate can be elected at once) and campaigns
  // again only after `resign_holdoff`. OK when not leading.
  absl::Status Resign();
  // Stops campaigning; resigns first when leading. Idempotent.
  void Stop();

  static std::string LeaderKey(std::string_view pool);

 private:
  LeaderElection(EtcdClient* etcd, ElectionOptions options, Clock* clock);
  void Run();
  void Campaign();
  void Renew();
  // Gives up `term` at etcd (delete our key if still ours, revoke the lease).
  void Release(int64_t term, int64_t lease);
  void Deposed(std::optional<int64_t> term, int64_t lease, std::string_view why);

  EtcdClient* const etcd_;
  const ElectionOptions options_;
  const std::string key_;
  Clock* const clock_;
  mutable absl::Mutex mutex_;
  ElectionState state_ ABSL_GUARDED_BY(mutex_);
  int64_t lease_ ABSL_GUARDED_BY(mutex_) = 0;  // while leader
  absl::Time campaign_after_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  bool warned_ ABSL_GUARDED_BY(mutex_) = false;  // etcd unreachable, said once until it answers
  std::thread thread_;
};

// Checks a pool name for the leader key.
absl::Status ValidatePoolName(std::string_view pool);

}  // namespace unipool

#endif  // UNIPOOL_ELECTION_LEADER_ELECTION_H_
