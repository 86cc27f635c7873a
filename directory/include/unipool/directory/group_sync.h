// Group commit of fsyncs: threads that wrote to a log and must wait for it to
// be on disk share fsyncs. A waiter whose write is not covered yet either runs
// the next fsync itself (covering every write finished before it starts) or,
// when one is running, waits for it and then for the next. So however many
// threads commit together, one fsync is in flight and the ones waiting behind
// it are all covered by the next: at most two fsyncs per wait, usually one.
//
// Thread safety: thread-safe. The fsync runs with no lock held; callers must
// not hold locks other requests need while they wait.
#ifndef UNIPOOL_DIRECTORY_GROUP_SYNC_H_
#define UNIPOOL_DIRECTORY_GROUP_SYNC_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace unipool {

class GroupSync {
 public:
  // `sync` makes every write finished before it started durable (e.g.
  // RocksDB's SyncWAL). It is only ever run by one thread at a time.
  explicit GroupSync(std::function<absl::Status()> sync) : sync_(std::move(sync)) {}
  GroupSync(const GroupSync&) = delete;
  GroupSync& operator=(const GroupSync&) = delete;

  // Call once a write has returned: the ticket to wait for it with.
  uint64_t Written() ABSL_LOCKS_EXCLUDED(mu_);
  // Returns once the write of `ticket` is durable, or the error of the
  // fsync that should have covered it. Ticket 0 is always durable.
  absl::Status WaitDurable(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes every write finished so far durable (the background flusher).
  absl::Status SyncAll() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether some write is not durable yet.
  bool HasUnsynced() ABSL_LOCKS_EXCLUDED(mu_);

  // fsyncs run so far (for tests and logs).
  uint64_t syncs() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::function<absl::Status()> sync_;
  absl::Mutex mu_;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;  // tickets handed out
  uint64_t synced_ ABSL_GUARDED_BY(mu_) = 0;   // every ticket up to this is durable
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;  // an fsync is running
  // The last failed fsync and the tickets it was to cover (they fail too;
  // later ones get a fresh attempt).
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  uint64_t failed_through_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_GROUP_SYNC_H_
