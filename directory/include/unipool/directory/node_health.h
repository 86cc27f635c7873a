// A node's liveness as the directory sees it, and the rules that move it:
//
//   up       serves reads and takes new objects.
//   suspect  a client reported it unreachable: lookups return none of its
//            copies and placement skips it until the directory's own probe
//            (connect + a cheap request to its data port) answers (up) or
//            not (down). A node that passed a probe moments ago is not made
//            suspect again by reports: one client behind a broken link cannot
//            keep a healthy node out of the pool.
//   down     failed a probe, silent past the node timeout, or its RDMA link
//            is down. A heartbeat brings a node down by silence or link back
//            up at once (it was only slow); a node down by a failed probe
//            becomes suspect and is probed again first.
//
// Every change is returned as a Transition, which the directory logs in one
// line. Times are passed in (the directory's clock), so tests drive it with a
// fake clock.
//
// Thread safety: not thread-safe; the directory guards it with its mutex.
#ifndef UNIPOOL_DIRECTORY_NODE_HEALTH_H_
#define UNIPOOL_DIRECTORY_NODE_HEALTH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace unipool {

enum class Liveness { kUp, kSuspect, kDown };
std::string_view LivenessName(Liveness state);

// A node's state changed: from what, to what, and why (one short phrase).
struct Transition {
  Liveness from = Liveness::kDown;
  Liveness to = Liveness::kDown;
  std::string reason;
};

class NodeHealth {
 public:
  // Starts down, as of `since` (a node known from the catalog, not yet
  // registered again).
  explicit NodeHealth(absl::Time since) : down_since_(since) {}

  // A node that passed a probe ignores reports for this long.
  static constexpr absl::Duration kReportCooldown = absl::Milliseconds(500);

  Liveness state() const { return state_; }
  bool up() const { return state_ == Liveness::kUp; }
  // When the node last left up (for the re-replication delay); meaningful
  // while it is not up.
  absl::Time down_since() const { return down_since_; }
  // The probe currently owed for this node: each suspicion gets a new number,
  // so a late answer to an older probe is ignored.
  uint64_t probe_epoch() const { return probe_epoch_; }
  bool probe_due() const { return probe_due_; }
  // The prober took the due probe.
  void ProbeTaken() { probe_due_ = false; }

  // The node registered (new or readmitted): up.
  std::optional<Transition> Registered(absl::Time now);
  // A client could not reach the node. Up -> suspect (a probe is due).
  std::optional<Transition> Reported(absl::Time now);
  // The probe of `epoch` answered or not: suspect -> up or down.
  std::optional<Transition> ProbeFinished(uint64_t epoch, bool answered, std::string_view why,
                                          absl::Time now);
  // A heartbeat arrived; `link_down` when the node says its RDMA link is.
  std::optional<Transition> Heartbeat(bool link_down, absl::Time now);
  // No heartbeat for `silence`, past the node timeout: down.
  std::optional<Transition> TimedOut(absl::Duration silence, absl::Time now);

 private:
  std::optional<Transition> MoveTo(Liveness to, std::string reason, absl::Time now);

  Liveness state_ = Liveness::kDown;
  // Down because a probe failed: a heartbeat alone does not bring it back.
  bool failed_probe_ = false;
  bool probe_due_ = false;
  uint64_t probe_epoch_ = 0;
  absl::Time down_since_;
  absl::Time last_probe_ok_ = absl::InfinitePast();
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_NODE_HEALTH_H_
