// Write capabilities to end at the nodes (FORMATS.md, "Write capabilities
// end at commit"): the directory queues a put's capabilities when the put
// is committed or aborted, and the revocation worker tells each node
// (RevokeWrites), then tells the directory which objects' capabilities
// ended, so that their memory may be reused at once when they are evicted
// or removed. Until then the directory holds such memory for the
// capabilities' whole life, as it does when a revocation is dropped (the
// queue is bounded) or a node refuses it.
//
// Thread safety: thread-safe (its own lock, taken after the directory's).
#ifndef UNIPOOL_DIRECTORY_REVOCATION_QUEUE_H_
#define UNIPOOL_DIRECTORY_REVOCATION_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

// The write capabilities of one put, each with the address of the node
// that checks it.
struct RevokePlan {
  std::string key;  // the committed object's; "" for an aborted put
  uint64_t version = 0;
  struct OnNode {
    std::string address;
    Capability capability;
  };
  std::vector<OnNode> on_nodes;
};

class RevocationQueue {
 public:
  // Puts queued at most; beyond it the oldest are dropped (their memory is
  // then held until the capabilities expire).
  static constexpr size_t kMaxQueued = 65536;

  void Push(RevokePlan plan);
  // Up to `max` plans, oldest first; waits up to `timeout` for one.
  std::vector<RevokePlan> Take(size_t max, absl::Duration timeout);
  // Plans dropped at the bound since the start.
  uint64_t dropped() const;

 private:
  mutable absl::Mutex mu_;
  std::deque<RevokePlan> plans_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_REVOCATION_QUEUE_H_
