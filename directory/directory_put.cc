// Directory: the two-phase put, top to bottom.
//   PutStart  checks each request, places its copies (evicting if need be),
//             and records a reservation (Reservations) in one catalog write.
//   PutCommit a group commit. Each call queues itself; whoever then holds
//             the commit gate first takes every queued call (its own
//             included) and runs them as one group:
//     plan     under mu_: each item accepted or rejected against the map as
//              it will be after the items before it (as one PutCommit with
//              every item would be), what they replace, the next
//              reservations asked, all in one catalog batch;
//     write    without mu_ (lookups, exists and lists go on and see the map
//              before the group): one RocksDB write, in the log when it
//              returns;
//     publish  under mu_: the map changes, or on a failed write every
//              accepted item fails and the handed reservations are released.
//   The gate is held from plan to publish, so no other mutation (PutStart,
//   Remove, Tick's expiries, evictions, drains) lands in between: the log
//   and the map change in the same order. Calls queued meanwhile wait on the
//   gate and find themselves done or lead the next group, so under load many
//   commits share one catalog write (and, with --sync=always, one fsync).
//   PutAbort  gives reservations back.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/retry_after.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {
std::vector<absl::StatusOr<Reservation>> Directory::PutStart(std::span<const PutRequest> requests) {
  std::vector<absl::StatusOr<Reservation>> results;
  results.reserve(requests.size());
  {
    // Shared, without the gate: a registration this waits for needs both.
    absl::ReaderMutexLock wait_lock(&mu_);
    AwaitRestartedNodes([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      int wanted = 1;
      for (const PutRequest& r : requests) wanted = std::max(wanted, r.replicas);
      return nodes_.TakingObjects() < wanted;
    });
  }
  ExclusiveLock lock(this);
  int64_t deadline = absl::ToUnixMillis(options_.clock() + options_.put_timeout);
  CatalogBatch batch;
  for (const PutRequest& request : requests) {
    results.push_back(Reserve(request, deadline, batch));
    if (!results.back().ok() && RetryAfter(results.back().status()).has_value()) {
      pool_full_waits_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (batch.empty()) return results;
  batch.PutNextVersion(next_version_);
  // Not fsync'ed: a reservation only has to survive a crash of this process
  // (RocksDB's log is in the page cache); the commit that follows is synced.
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist reservations: %s", s.ToString());
    for (auto& result : results) {
      if (!result.ok()) continue;
      ReleasePending(result->put_id);
      result = s;
    }
  }
  return results;
}

absl::Status Directory::CheckPutRequest(const PutRequest& request) {
  RETURN_IF_ERROR(ValidateKey(request.key));
  if (request.length == 0 || request.length > kMaxObjectBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("object '%s' of %u bytes: size must be 1 byte to %s",
                        PrintableKey(request.key), request.length, FormatSize(kMaxObjectBytes)));
  }
  if (request.replicas < 1 || request.replicas > kMaxReplicas) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s': %d replicas asked; 1 to %d are possible", PrintableKey(request.key),
                        request.replicas, kMaxReplicas));
  }
  // An object whose every copy is on a down node cannot be read: it counts
  // as absent and may be put again.
  if (!request.replace) {
    auto existing = objects_.find(request.key);
    if (existing != objects_.end() && HasLiveCopy(existing->second)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "key '%s' already exists (objects are immutable; put with replace to overwrite)",
          PrintableKey(request.key)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Reservation> Directory::Reserve(const PutRequest& request, int64_t deadline_unix_ms,
                                               CatalogBatch& batch) {
  RETURN_IF_ERROR(CheckPutRequest(request));
  // Allocated bytes: a one-byte put costs the allocation unit it takes.
  uint64_t quota_bytes =
      RoundUpToAllocation(request.length) * static_cast<uint64_t>(std::max(request.replicas, 1));
  RETURN_IF_ERROR(reservations_.CheckQuota(request.owner, quota_bytes, nodes_.LiveCapacity(),
                                           request.reservation_limit));
  RETURN_IF_ERROR(MakeTenantRoom(request.key, quota_bytes));
  ASSIGN_OR_RETURN(std::vector<NodeEntry*> placed,
                   PlaceCopies(request.key, request.length, request.replicas, {}));
  PendingPut pending;
  pending.key = std::string(request.key);
  pending.length = request.length;
  pending.replace = request.replace;
  pending.deadline_unix_ms = deadline_unix_ms;
  pending.owner = std::string(request.owner);
  pending.quota_bytes = quota_bytes;
  pending.holder = request.client_id;
  return AddPending(std::move(pending), placed, batch);
}

Reservation Directory::AddPending(PendingPut pending, std::span<NodeEntry* const> placed,
                                  CatalogBatch& batch) {
  std::vector<ObjectCopy> copies;
  for (NodeEntry* node : placed) {
    copies.push_back({node->record.node_id, *node->allocator.Allocate(pending.length)});
  }
  pending.version = next_version_++;
  SetCopies(pending, copies);
  const PendingPut& added = reservations_.Add(std::move(pending));
  batch.PutPending(added);
  Reservation reservation;
  reservation.put_id = added.put_id;
  ObjectRecord shape;
  shape.length = added.length;
  shape.version = added.version;
  SetCopies(shape, copies);
  // The write capabilities last as long as the reservation.
  reservation.location = InfoOf(shape, wire::Access::Write, added.deadline_unix_ms);
  return reservation;
}

void Directory::ReleasePending(uint64_t put_id) {
  std::optional<PendingPut> released = reservations_.Take(put_id);
  if (!released.has_value()) return;
  for (const ObjectCopy& copy : CopiesOf(*released)) FreeCopy(copy, released->length);
}

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

absl::Status Directory::AcceptCommit(const CommitRequest& request, const Committer& who,
                                     size_t member, size_t index, int64_t now_ms,
                                     CommitPlan& plan) {
  const PendingPut* found = reservations_.Find(request.put_id);
  if (found == nullptr || !plan.seen_ids.insert(request.put_id).second) {
    return absl::NotFoundError(absl::StrFormat(
        "put %u is unknown: it expired, was aborted or was already committed", request.put_id));
  }
  const PendingPut& pending = *found;
  const bool prehanded = pending.key.empty();
  if (!prehanded && !request.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("put %u of '%s' was reserved with its key: its commit must not name one",
                        pending.put_id, PrintableKey(pending.key)));
  }
  if (!prehanded && pending.holder != 0 &&
      (pending.holder != who.client_id || pending.owner != who.owner)) {
    // Left alone: its own client commits it.
    return absl::NotFoundError(
        absl::StrFormat("put %u of '%s' was started by another client: only that client commits it",
                        pending.put_id, PrintableKey(pending.key)));
  }
  std::string_view key = pending.key;
  bool replace = pending.replace;
  if (prehanded) {
    absl::StatusOr<std::string_view> named = PrehandedKey(pending, request, who);
    if (absl::IsNotFound(named.status())) return named.status();  // not this client's: left alone
    if (!named.ok()) {
      plan.rejected_ids.push_back(pending.put_id);  // its holder is done with it
      return named.status();
    }
    key = *named;
    replace = request.replace;
  }
  if (pending.deadline_unix_ms < now_ms) {
    plan.rejected_ids.push_back(pending.put_id);
    return absl::NotFoundError(absl::StrFormat("put %u of '%s' expired before its commit",
                                               pending.put_id, PrintableKey(key)));
  }
  std::vector<ObjectCopy> written;
  std::vector<ObjectCopy> unwritten;
  for (const ObjectCopy& copy : CopiesOf(pending)) {
    bool failed = std::find(request.failed_nodes.begin(), request.failed_nodes.end(),
                            copy.node_id) != request.failed_nodes.end();
    (failed ? unwritten : written).push_back(copy);
  }
  if (written.empty()) {
    plan.rejected_ids.push_back(pending.put_id);
    return absl::UnavailableError(
        absl::StrFormat("put %u of '%s': no copy was written", pending.put_id, PrintableKey(key)));
  }
  // Judged against the map as it will be after the earlier items of the batch.
  auto existing = objects_.find(key);
  bool exists = (existing != objects_.end() && HasLiveCopy(existing->second)) ||
                plan.committed_keys.contains(key);
  if (exists && !replace) {
    plan.rejected_ids.push_back(pending.put_id);
    if (prehanded) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "key '%s' already exists (objects are immutable; put with replace to overwrite)",
          PrintableKey(key)));
    }
    return absl::AlreadyExistsError(
        absl::StrFormat("key '%s' was committed by another put first", PrintableKey(key)));
  }
  plan.committed_keys.insert(key);
  ObjectRecord object;
  object.length = pending.length;
  object.version = pending.version;
  object.checksum = request.checksum;
  object.created_unix_ms = now_ms;
  SetCopies(object, written);
  plan.batch.PutObject(key, object);
  plan.batch.DeletePending(pending.put_id);
  plan.accepted.push_back(
      {member, index, pending.put_id, std::string(key), std::move(object), std::move(unwritten)});
  return absl::OkStatus();
}

absl::StatusOr<std::string_view> Directory::PrehandedKey(const PendingPut& pending,
                                                         const CommitRequest& request,
                                                         const Committer& who) {
  if (pending.holder == 0 || pending.holder != who.client_id || pending.owner != who.owner) {
    // After a restart nobody's claim can be checked: it waits for its
    // deadline (its holder may still be writing), and the put goes through
    // PutStart.
    return absl::NotFoundError(absl::StrFormat(
        "put %u is not a reservation of this client (or the directory restarted since it was "
        "handed out): put again",
        pending.put_id));
  }
  if (request.key.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "put %u was reserved without a key: its commit must name the key", pending.put_id));
  }
  RETURN_IF_ERROR(ValidateKey(request.key));
  return request.key;
}

void Directory::PlanReplacements(CommitPlan& plan) {
  // Rejected reservations and copies the client could not write: held while
  // their write capabilities work.
  for (uint64_t id : plan.rejected_ids) {
    plan.batch.DeletePending(id);
    plan.releases.push_back(PlanPendingRelease(*reservations_.Find(id), plan.batch));
  }
  for (const CommitPlan::Accepted& a : plan.accepted) {
    if (a.unwritten.empty()) continue;
    int64_t until = hold_.WriteCapabilityEnd(reservations_.Find(a.put_id)->deadline_unix_ms);
    plan.releases.push_back(PlanRelease(a.unwritten, a.object.length, until, plan.batch));
  }
  // Objects replaced by this batch: their memory is held while leased.
  StringViewSet replaced;
  for (const CommitPlan::Accepted& a : plan.accepted) {
    std::string_view key = a.key;
    auto existing = objects_.find(key);
    if (existing == objects_.end() || !replaced.insert(key).second) continue;
    plan.releases.push_back(PlanRelease(CopiesOf(existing->second), existing->second.length,
                                        existing->second.hold_until_unix_ms(), plan.batch));
  }
}

void Directory::ReserveNext(const Committer& who, std::span<const ReserveShape> next,
                            int64_t deadline_unix_ms, CatalogBatch& batch,
                            std::vector<Reservation>& reserved) {
  if (who.client_id == 0) return;
  uint64_t capacity = nodes_.LiveCapacity();
  for (const ReserveShape& shape : next) {
    if (shape.length == 0 || shape.length > kMaxObjectBytes || shape.replicas < 1 ||
        shape.replicas > kMaxReplicas) {
      continue;  // what PutStart would refuse is not reserved either
    }
    uint64_t bytes = RoundUpToAllocation(shape.length) * static_cast<uint64_t>(shape.replicas);
    for (uint32_t n = 0; n < shape.count; ++n) {
      if (!reservations_.MayPrehand(who, bytes, capacity)) {
        return;  // caps reached: the client puts the rest through PutStart
      }
      // Never at the cost of an object: no eviction for a put not asked yet.
      absl::StatusOr<std::vector<NodeEntry*>> placed =
          PlaceCopies("", shape.length, shape.replicas, {}, /*may_evict=*/false);
      if (!placed.ok()) break;
      PendingPut pending;
      pending.length = shape.length;
      pending.deadline_unix_ms = deadline_unix_ms;
      pending.owner = std::string(who.owner);
      pending.quota_bytes = bytes;
      pending.holder = who.client_id;
      reserved.push_back(AddPending(std::move(pending), *placed, batch));
    }
  }
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

void Directory::ApplyCommits(CommitPlan& plan, int64_t now_ms) {
  for (uint64_t id : plan.rejected_ids) reservations_.Take(id);
  for (Release& release : plan.releases) ApplyRelease(release);
  absl::flat_hash_set<std::string> inserted_now;
  for (CommitPlan::Accepted& a : plan.accepted) {
    const int64_t deadline = reservations_.Take(a.put_id)->deadline_unix_ms;
    if (auto existing = objects_.find(a.key); existing != objects_.end()) {
      // An object older than this batch went with its release above; one
      // committed earlier in this batch was never visible: free it now.
      if (inserted_now.contains(a.key)) {
        for (const ObjectCopy& copy : CopiesOf(existing->second)) {
          FreeCopy(copy, existing->second.length);
        }
      }
      Account(existing->second, -1);
      objects_.Erase(existing);
    }
    inserted_now.insert(a.key);
    // A pin past its tenant's pin quota leaves the object unpinned.
    uint64_t allocated = RoundUpToAllocation(a.object.length) * CopiesOf(a.object).size();
    bool pinned = pins_.Covers(a.key) && tenants_.CheckPin(a.key, allocated).ok();
    ObjectEntry& entry = objects_.Insert(a.key, a.object, pinned, now_ms);
    entry.write_until_unix_ms = hold_.WriteCapabilityEnd(deadline);
    QueueRevocation(a.key, entry.version, CopiesOf(entry), entry.length, deadline);
    Account(entry, +1);
    QueueIfDraining(entry);
    QueueDemotion(entry);
  }
}

void Directory::PutAbort(std::span<const uint64_t> put_ids, const Committer& who) {
  ExclusiveLock lock(this);
  CatalogBatch batch;
  std::vector<uint64_t> aborted;
  std::vector<Release> releases;
  for (uint64_t id : put_ids) {
    const PendingPut* found = reservations_.Find(id);
    if (found == nullptr || std::find(aborted.begin(), aborted.end(), id) != aborted.end()) {
      continue;
    }
    const PendingPut& pending = *found;
    // A put is only its client's to give back (a pre-handed one after a
    // restart: nobody's).
    if (pending.key.empty() && pending.holder == 0) continue;
    if (pending.holder != 0 && (pending.holder != who.client_id || pending.owner != who.owner)) {
      continue;
    }
    batch.DeletePending(id);
    aborted.push_back(id);
    // Its write capabilities still work: the range is held until they end.
    releases.push_back(PlanPendingRelease(pending, batch));
  }
  if (batch.empty()) return;
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist aborts: %s", s.ToString());
    return;  // they expire instead
  }
  for (uint64_t id : aborted) reservations_.Take(id);
  for (const Release& release : releases) ApplyRelease(release);
}

}  // namespace unipool
