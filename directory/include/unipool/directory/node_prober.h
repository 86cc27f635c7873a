// Probes the nodes clients reported unreachable (Directory::ReportUnreachable)
// off the request path: connects to the node's data port and asks for the
// checksum of one byte of its slab. An answer brings the node back up; none
// within the timeouts marks it down at once, instead of after the node
// timeout.
//
// Thread safety: Start and Stop from one thread; runs its own thread.
#ifndef UNIPOOL_DIRECTORY_NODE_PROBER_H_
#define UNIPOOL_DIRECTORY_NODE_PROBER_H_

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "unipool/directory/directory.h"

namespace unipool {

// Connect within this long, answer within this long: a live node on any link
// unipool targets answers in well under a millisecond, so these only bound
// how long a dead or wedged node takes to be marked down.
inline constexpr absl::Duration kProbeConnectTimeout = absl::Milliseconds(300);
inline constexpr absl::Duration kProbeAnswerTimeout = absl::Milliseconds(500);

// One probe of the node serving at `address`: OK when it answered.
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

 private:
  void Run();

  Directory* const directory_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_NODE_PROBER_H_
