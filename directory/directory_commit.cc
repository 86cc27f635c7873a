// PutCommit as a group commit. Each call queues itself; whoever then holds
// the commit gate first takes every queued call (its own included) and runs
// them as one group:
//   plan     under mu_: each item accepted or rejected against the map as it
//            will be after the items before it (as one PutCommit with every
//            item would be), what they replace, the next reservations asked,
//            all in one catalog batch;
//   write    without mu_ (lookups, exists and lists go on and see the map
//            before the group): one RocksDB write, in the log when it returns;
//   publish  under mu_: the map changes, or on a failed write every accepted
//            item fails and the handed reservations are released.
// The gate is held from plan to publish, so no other mutation (PutStart,
// Remove, Tick's expiries, evictions, drains) lands in between: the log and
// the map change in the same order, and nothing the plan relied on moves.
// Calls queued meanwhile wait on the gate and find themselves done or lead
// the next group, so under load many commits share one catalog write (and,
// with --sync=always, the fsyncs GroupSync shares between groups).
#include "absl/strings/str_format.h"
#include "unipool/common/log.h"
#include "unipool/directory/directory.h"

namespace unipool {

std::vector<absl::Status> Directory::PutCommit(std::span<const CommitRequest> requests,
                                               const Committer& who,
                                               std::span<const ReserveShape> next,
                                               std::vector<Reservation>* reserved) {
  QueuedCommit me;
  me.requests = requests;
  me.who = who;
  if (reserved != nullptr) me.next = next;
  me.results.resize(requests.size());
  commit_calls_.fetch_add(1, std::memory_order_relaxed);
  {
    absl::MutexLock queue_lock(&commit_queue_mu_);
    commit_queue_.push_back(&me);
  }
  {
    absl::MutexLock gate(&gate_mu_);
    // Not done yet: `me` is still queued (a leader marks its whole group
    // done before it lets go of the gate), so this group includes it.
    if (!me.done) RunCommitGroup();
  }
  if (reserved != nullptr) {
    reserved->insert(reserved->end(), std::make_move_iterator(me.handed.begin()),
                     std::make_move_iterator(me.handed.end()));
  }
  // Outside every lock: other requests go on while the log is fsync'ed (and
  // commits arriving meanwhile share the fsync).
  FailOkResults(catalog_->AwaitDurable(me.ticket), "commits", me.results);
  return std::move(me.results);
}

void Directory::RunCommitGroup() {
  std::vector<QueuedCommit*> group;
  {
    absl::MutexLock queue_lock(&commit_queue_mu_);
    group.swap(commit_queue_);
  }
  CommitPlan plan;
  int64_t now_ms = 0;
  {
    CommitPhaseLock lock(this);
    now_ms = absl::ToUnixMillis(options_.clock());
    PlanCommitGroup(group, now_ms, plan);
  }
  absl::StatusOr<uint64_t> written = uint64_t{0};
  if (!plan.batch.empty()) {
    written = catalog_->Write(plan.batch);
    commit_writes_.fetch_add(1, std::memory_order_relaxed);
  }
  CommitPhaseLock lock(this);
  PublishCommitGroup(group, plan, written, now_ms);
}

void Directory::PlanCommitGroup(std::span<QueuedCommit* const> group, int64_t now_ms,
                                CommitPlan& plan) {
  for (size_t m = 0; m < group.size(); ++m) {
    QueuedCommit& call = *group[m];
    for (size_t i = 0; i < call.requests.size(); ++i) {
      call.results[i] = AcceptCommit(call.requests[i], call.who, m, i, now_ms, plan);
    }
  }
  PlanReplacements(plan);
  // The next puts' reservations go in the same catalog write.
  int64_t deadline = absl::ToUnixMillis(options_.clock() + options_.put_timeout);
  bool handed = false;
  for (QueuedCommit* call : group) {
    if (call->next.empty()) continue;
    ReserveNext(call->who, call->next, deadline, plan.batch, call->handed);
    handed = handed || !call->handed.empty();
  }
  if (handed) plan.batch.PutNextVersion(next_version_);
}

void Directory::PublishCommitGroup(std::span<QueuedCommit* const> group, CommitPlan& plan,
                                   const absl::StatusOr<uint64_t>& written, int64_t now_ms) {
  if (written.ok()) {
    ApplyCommits(plan, now_ms);
  } else {
    // Rejected reservations stay: they expire, or their puts are retried.
    LogError("cannot persist %u commits: %s", plan.accepted.size(), written.status().ToString());
    for (QueuedCommit* call : group) {
      for (const Reservation& r : call->handed) ReleasePending(r.put_id);
      call->handed.clear();
    }
    for (const CommitPlan::Accepted& a : plan.accepted) {
      group[a.member]->results[a.index] = written.status();
    }
  }
  for (QueuedCommit* call : group) {
    call->ticket = written.ok() ? *written : 0;
    call->done = true;
  }
}

}  // namespace unipool
