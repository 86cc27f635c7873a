// The directory's background lifecycle work that needs the nodes:
//   - drains: for each MovePlan, asks the source node to Copy the bytes into
//     the target node's slab (node to node: page bytes never pass through the
//     directory), asks the target for the Checksum of what landed, and
//     publishes the move with Directory::FinishMove;
//   - readmitted slabs: asks the node for the Checksum of every copy the
//     catalog says it holds and drops the copies that do not match;
//   - the flash tier: asks nodes with flash to write new objects' memory
//     copies there (FlashDemote), so that eviction keeps them on flash;
//   - write capabilities: ends them at the nodes once their put is
//     committed or aborted (RevokeWrites), on a thread of their own
//     (revocation_worker.h), so that a long drain never delays them.
// Everything is planned and published by Directory; this class only talks to
// nodes.
//
// Thread safety: Start and Stop from one thread; runs its own thread.
#ifndef UNIPOOL_DIRECTORY_LIFECYCLE_WORKER_H_
#define UNIPOOL_DIRECTORY_LIFECYCLE_WORKER_H_

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/flash_calls.h"
#include "unipool/directory/revocation_worker.h"

namespace unipool {

class LifecycleWorker {
 public:
  // `directory` must outlive the worker.
  explicit LifecycleWorker(Directory* directory) : directory_(directory), revoker_(directory) {}
  ~LifecycleWorker() { Stop(); }
  LifecycleWorker(const LifecycleWorker&) = delete;
  LifecycleWorker& operator=(const LifecycleWorker&) = delete;

  void Start();
  void Stop();

 private:
  void Run();
  void Verify(const VerifyPlan& plan);
  // Copies the moves of one (source, target) pair and finishes each.
  void Move(const std::vector<MovePlan>& moves);
  // Demotes a round of new objects to flash; false when there were none.
  bool Demote();

  // The wait after a round, growing with consecutive failing rounds.
  static absl::Duration Backoff(int failed_rounds);

  Directory* const directory_;
  int failures_ = 0;       // in this round (worker thread only)
  int failed_rounds_ = 0;  // consecutive rounds with failures (worker thread only)
  FlashCalls flash_;
  RevocationWorker revoker_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_LIFECYCLE_WORKER_H_
