// Probes the nodes clients reported unreachable (Directory::ReportUnreachable)
// off the request path: connects to the node's data port and asks for the
// checksum of one byte of its slab. An answer brings the node back up; none
// within the timeouts marks it down at once, instead of after the node
// timeout.
//
// Clients' reports (tenants' tokens and the cluster key alike) are checked
// first (CheckReports): the prober probes each node named, and only a node
// that does not answer is reported unreachable. A false report thus costs a
// probe (at most one per node per kReportCheckCooldown) and never hides a
// live node's copies from other clients' lookups.
//
// Thread safety: Start and Stop from one thread; runs its own thread.
#ifndef UNIPOOL_DIRECTORY_NODE_PROBER_H_
#define UNIPOOL_DIRECTORY_NODE_PROBER_H_

#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "unipool/directory/directory.h"

namespace unipool {

// Connect within this long, answer within this long: a live node on any link
// unipool targets answers in well under a millisecond, so these only bound
// how long a dead or wedged node takes to be marked down.
inline constexpr absl::Duration kProbeConnectTimeout = absl::Milliseconds(300);
inline constexpr absl::Duration kProbeAnswerTimeout = absl::Milliseconds(500);

// A node that answered a check is not probed again for reports this soon.
inline constexpr absl::Duration kReportCheckCooldown = absl::Milliseconds(500);

// One probe of the node serving at `address`: OK when it answered (a
// refusal for one of its connection caps is an answer: it is alive).
absl::Status ProbeNode(const std::string& address);

class NodeProber {
 public:
  // `directory` must outlive the prober.
  explicit NodeProber(Directory* directory) : directory_(directory) {}
  ~NodeProber() { Stop(); }
  NodeProber(const NodeProber&) = delete;
  NodeProber& operator=(const NodeProber&) = delete;

  void Start();
  void Stop();

  // An untrusted peer could not reach these nodes: probe them (off the
  // caller's thread) and report the ones that do not answer. Returns at once.
  void CheckReports(std::span<const NodeId> ids);

 private:
  void Run();
  void RunChecks();
  // Probes the nodes of `ids` that are up and not checked lately; returns
  // those that did not answer.
  std::vector<NodeId> Check(const std::vector<NodeId>& ids);

  Directory* const directory_;
  absl::Notification stop_;
  std::thread thread_;
  std::thread checker_;

  absl::Mutex checks_mu_;
  absl::flat_hash_set<NodeId> reported_ ABSL_GUARDED_BY(checks_mu_);
  // Checker thread only: when each node last answered a check.
  absl::flat_hash_map<NodeId, absl::Time> answered_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_NODE_PROBER_H_
