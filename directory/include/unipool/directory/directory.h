// The directory's state machine: node registry, space allocation, the object
// map and the two-phase put, durable in a Catalog (RocksDB); the network
// front end is DirectoryService (directory_service.h). docs/directory.md
// explains the design: the two-phase put and pre-handed reservations, group
// commit, leases and held memory, eviction, pins, node loss, drains.
//
// Directory coordinates parts that own the state, each guarded by mu_:
// NodeRegistry, Reservations, Placement, Repairs, HeldSpace, Tenants,
// ObjectTable, PinSet, DrainTracker (their headers say what each owns). Its
// own code is split by concern: directory.cc (start-up, lookups, removes,
// status, tick), directory_put.cc, directory_nodes.cc,
// directory_lifecycle.cc, directory_eviction.cc, directory_drain.cc,
// directory_repairs.cc, directory_tenants.cc, directory_flash.cc.
//
// Thread safety: thread-safe. Mutations are serialised by the commit gate
// (gate_mu_) and change memory under mu_; neither is held across an fsync,
// and a commit group's catalog write holds only the gate. Lookups and exists
// take mu_ shared (a lookup's lease is an atomic; its recency touch is
// queued and applied by the next exclusive section).
#ifndef UNIPOOL_DIRECTORY_DIRECTORY_H_
#define UNIPOOL_DIRECTORY_DIRECTORY_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/common/capability.h"
#include "unipool/common/string_map.h"
#include "unipool/directory/catalog.h"
#include "unipool/directory/directory_options.h"
#include "unipool/directory/directory_types.h"
#include "unipool/directory/drain_tracker.h"
#include "unipool/directory/fabric_book.h"
#include "unipool/directory/held_space.h"
#include "unipool/directory/node_registry.h"
#include "unipool/directory/object_table.h"
#include "unipool/directory/pin_set.h"
#include "unipool/directory/placement.h"
#include "unipool/directory/records.h"
#include "unipool/directory/repairs.h"
#include "unipool/directory/reservations.h"
#include "unipool/directory/revocation_queue.h"
#include "unipool/directory/tenants.h"
#include "unipool/pool_types.h"

namespace unipool {

class Directory {
 public:
  // Opens the catalog at `db_path` and rebuilds the map and every node's
  // allocations from it. Known nodes start down until they register again.
  static absl::StatusOr<std::unique_ptr<Directory>> Open(const std::string& db_path,
                                                         DirectoryOptions options);

  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;
  ~Directory();

  // A node (re)announces its slab. Same name and slab_id as before: the node
  // is readmitted with its objects. Same name, new slab_id: its memory was
  // lost, so its objects are dropped. InvalidArgument for a record over the
  // bounds of records.h; FailedPrecondition when the name belongs to a node
  // of another identity or the node belongs to another pool;
  // ResourceExhausted past kMaxNodes.
  absl::StatusOr<RegistrationResult> RegisterNode(const NodeRegistration& registration);

  // NotFound when the node or its slab is unknown (it must register again).
  // `rdma_link_down` (nodes before multi-port RDMA): the node's one RDMA
  // port lost its link; the node is marked down until a beat without it.
  // `rdma_ports`, when given: the node's ports changed state.
  absl::Status Heartbeat(NodeId node_id, uint64_t slab_id, const NodeCounters& counters,
                         bool rdma_link_down = false,
                         const std::vector<RdmaPortInfo>* rdma_ports = nullptr);

  // One result per request, in order. AlreadyExists for a committed key
  // without replace; ResourceExhausted when no live node has room;
  // InvalidArgument for a bad key or length.
  std::vector<absl::StatusOr<Reservation>> PutStart(std::span<const PutRequest> requests);

  // One status per request. NotFound for an unknown or expired put id, or
  // a pre-handed one that is not `who`'s; AlreadyExists when the key was
  // committed meanwhile without replace (or, pre-handed, exists and
  // replace is not set). With `next`, then reserves pre-handed reservations
  // for `who` (as many as fit its caps and the pool without evicting) in the
  // same catalog write, appended to `reserved`.
  std::vector<absl::Status> PutCommit(std::span<const CommitRequest> requests,
                                      const Committer& who = {},
                                      std::span<const ReserveShape> next = {},
                                      std::vector<Reservation>* reserved = nullptr);

  // Releases reservations (a client that failed to write). Unknown ids, and
  // pre-handed ones not `who`'s, are ignored.
  void PutAbort(std::span<const uint64_t> put_ids, const Committer& who = {});

  // --- faults (directory_nodes.cc) ---

  // A client could not reach these nodes: each up one becomes suspect
  // (no reads, no placements) until the prober's answer. Unknown ids are
  // ignored.
  void ReportUnreachable(std::span<const NodeId> nodes);
  using ProbePlan = ::unipool::ProbePlan;
  // Waits up to `timeout` (real time) for probes to be due and takes them.
  std::vector<ProbePlan> TakeProbes(absl::Duration timeout);
  // The probe answered (OK) or not: the node goes up or down.
  void FinishProbe(const ProbePlan& plan, const absl::Status& result);

  // NotFound for keys that are not committed. With `prefix`, stops at the
  // first key that is not committed or has no live copy, and returns only
  // the leading readable keys (schema/FORMATS.md, prefix lookup).
  std::vector<absl::StatusOr<ObjectInfo>> Lookup(std::span<const std::string_view> keys,
                                                 bool prefix = false);
  std::vector<bool> Exists(std::span<const std::string_view> keys);
  // Whether each key is committed at all, even with every copy on a down
  // node. Touches no recency and takes no lease (for sweeps).
  std::vector<bool> Known(std::span<const std::string_view> keys);
  // NotFound for keys that are not committed.
  std::vector<absl::Status> Remove(std::span<const std::string_view> keys);

  PoolState Status();

  // The tenant `prefix` makes a request with its token's quotas (0: the
  // options' tenant defaults). A new tenant's objects are counted at once
  // (a scan of the map); known ones cost a lookup under the shared lock.
  // Tokens without a prefix are no tenant: ignored.
  void LearnTenant(std::string_view prefix, uint64_t storage_bytes, uint64_t pin_bytes);
  // A client's report of its RDMA paths, shown in Status() for a minute.
  void RecordFabric(ClientFabric report) { fabric_.Record(std::move(report), options_.clock()); }

  // Up to `limit` committed keys that start with `prefix` and sort after
  // `start_after` (bytewise), in order. Costs a scan of the whole map (an
  // admin request, not a data-path one).
  ListResult List(std::string_view prefix, std::string_view start_after, size_t limit);

  // Reclaims expired reservations and held extents, marks silent nodes down
  // and evicts above the high watermark. Called periodically by the service.
  void Tick();

  // --- lifecycle (directory_lifecycle.cc, directory_eviction.cc,
  // directory_drain.cc) ---

  // Pins a key, or every key starting with it (prefix), present and future.
  // InvalidArgument for a bad key.
  absl::Status Pin(std::string_view key, bool prefix);
  // NotFound when there is no such pin.
  absl::Status Unpin(std::string_view key, bool prefix);
  // Evicts every unpinned, unleased object whose key starts with `prefix`:
  // its memory copies (kMemory: demoted where flash holds them), its flash
  // copies (kFlash), or the object (kAll). Returns how many objects lost a
  // copy.
  absl::StatusOr<uint64_t> Evict(std::string_view prefix, EvictTier tier = EvictTier::kMemory);

  // Starts (or, with undrain, stops) draining the node named `node` (its
  // name or data address) and reports progress. NotFound for an unknown node.
  absl::StatusOr<DrainProgress> Drain(std::string_view node, bool undrain);
  // Up to `max` copies to move off draining nodes, each with its target
  // reserved. The caller copies the bytes and calls FinishMove for each.
  std::vector<MovePlan> PlanMoves(size_t max);
  // Publishes a finished move (the target's copy replaces the drained one)
  // when `copied` and the object is unchanged; otherwise releases the target.
  void FinishMove(const MovePlan& plan, bool copied);

  // --- the flash tier (directory_flash.cc; docs/flash.md) ---

  // Up to `max` memory copies on nodes with flash to write to their flash
  // (newly committed objects, newest first), so that evicting them later
  // keeps them on flash. The caller asks each node (FlashDemote) and calls
  // FinishDemotions with one status per plan.
  std::vector<FlashPlan> PlanDemotions(size_t max);
  void FinishDemotions(std::span<const FlashPlan> plans, std::span<const absl::Status> results);
  // For the keys a lookup names (with `prefix`, up to the first key that is
  // neither in memory nor on flash) that are on flash only: memory reserved
  // on a node whose flash holds them (evicting if needed), for the caller to
  // ask the node to read them into (FlashPromote), then FinishPromotions.
  std::vector<FlashPlan> PlanPromotions(std::span<const std::string_view> keys, bool prefix);
  // OK: the copy is in memory again. NotFound, DataLoss, Unavailable from
  // the node: its flash no longer has the page (dropped, counted). Other
  // errors: the reserved memory is released, the flash copy kept.
  void FinishPromotions(std::span<const FlashPlan> plans, std::span<const absl::Status> results);
  // A node's announcement of pages on its flash (flash_announce.cc), `node`
  // and `offset` of each plan unused: pages the catalog does not know become
  // objects on flash only; known ones at the same version gain the node's
  // flash copy. One status per page: OK (recorded or already known),
  // AlreadyExists (another version is known), InvalidArgument;
  // FailedPrecondition for all when the node is not up with flash.
  std::vector<absl::Status> AnnounceFlash(NodeId node_id, std::span<const FlashPlan> pages);
  // Whether any node registered a flash tier since the directory started:
  // lookups may then need a node's reply (not quick).
  bool flash_in_use() const { return flash_in_use_.load(std::memory_order_relaxed); }

  // --- write capabilities end at commit or abort (directory_revocations.cc) ---

  // The puts whose write capabilities the revocation worker is to end at
  // their nodes (RevokeWrites); it then calls FinishRevocations, `ended[i]`
  // true when every node of plans[i] revoked them.
  RevocationQueue& revocations() { return revocations_; }
  void FinishRevocations(std::span<const RevokePlan> plans, const std::vector<bool>& ended);

  // --- repairs (directory_repairs.cc) ---

  // A readmitted node whose copies have not been verified yet, if any.
  std::optional<VerifyPlan> PlanVerification();
  // Drops the copies whose checksums did not match (`bad`) and marks the
  // node verified. Ignored when the node re-registered meanwhile.
  // When `result` is an error the node stays unverified (planned again).
  void FinishVerification(const VerifyPlan& plan, const absl::Status& result,
                          std::span<const VerifyItem> bad);

  uint64_t evictions() const { return evictions_total_.load(std::memory_order_relaxed); }
  // Puts answered "pool full for now" with a hint to try again (the
  // client SDK then waits): room was held by leases, held extents or
  // reservations, not by pins or quotas.
  uint64_t pool_full_waits() const { return pool_full_waits_.load(std::memory_order_relaxed); }
  // How long a reader may use a lookup's locations without asking again:
  // the lease, and in a pool with a key no longer than the read
  // capabilities it was given.
  absl::Duration lease() const;

  absl::Duration put_timeout() const { return options_.put_timeout; }
  // PutCommit calls so far, and the catalog writes that carried them (one
  // per commit group); fsyncs of the log are the catalog's syncs().
  struct CommitCounts {
    uint64_t calls = 0;
    uint64_t writes = 0;
  };
  CommitCounts commit_counts() const {
    return {commit_calls_.load(std::memory_order_relaxed),
            commit_writes_.load(std::memory_order_relaxed)};
  }
  // The catalog, for records the Directory does not interpret itself
  // (tensors and models: directory/tensor_catalog.h).
  Catalog& catalog() { return *catalog_; }
  // True while a put, lookup or exists may still wait for nodes known from
  // the catalog to register again after a restart (up to restart_grace):
  // such requests must not run on a server's event loop, which the nodes'
  // registrations need. Once false, stays false.
  bool MayAwaitRestartedNodes();
  // The pool's id, made when its catalog was created.
  const std::string& pool_id() const { return pool_id_; }

 private:
  // Defined in directory_internal.h: the locks, a planned release of copies,
  // a commit group's plan and its queued calls, a queued recency touch.
  class ExclusiveLock;
  class CommitPhaseLock;
  struct Release;
  struct CommitPlan;
  struct QueuedCommit;
  struct QueuedTouch;
  struct MoveOutcome;

  Directory(std::unique_ptr<Catalog> catalog, DirectoryOptions options);

  // Start-up (directory.cc).
  absl::Status Rebuild(CatalogContents contents);
  absl::Status RebuildObjects(std::vector<std::pair<std::string, ObjectRecord>>& objects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RebuildReservations(std::vector<PendingPut>& pending_puts,
                                   const std::vector<HeldExtent>& held_extents)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ClaimExtent(NodeId id, uint64_t offset, uint64_t length, std::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueTouches(std::span<ObjectEntry* const> entries, int64_t now_ms)
      ABSL_SHARED_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(touch_mu_);
  void ApplyTouches() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(touch_mu_);
  uint64_t RemoveObjects(std::span<const std::string_view> keys, std::vector<absl::Status>& results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void FailOkResults(const absl::Status& durable, std::string_view what,
                            std::vector<absl::Status>& results);

  // The put, top to bottom (directory_put.cc).
  absl::Status CheckPutRequest(const PutRequest& request) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Reservation> Reserve(const PutRequest& request, int64_t deadline_unix_ms,
                                      CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Reservation AddPending(PendingPut pending, std::span<NodeEntry* const> placed,
                         CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleasePending(uint64_t put_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunCommitGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  void PlanCommitGroup(std::span<QueuedCommit* const> group, int64_t now_ms, CommitPlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_, mu_);
  absl::Status AcceptCommit(const CommitRequest& request, const Committer& who, size_t member,
                            size_t index, int64_t now_ms, CommitPlan& plan)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string_view> PrehandedKey(const PendingPut& pending,
                                                const CommitRequest& request, const Committer& who)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PlanReplacements(CommitPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReserveNext(const Committer& who, std::span<const ReserveShape> next,
                   int64_t deadline_unix_ms, CatalogBatch& batch,
                   std::vector<Reservation>& reserved) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishCommitGroup(std::span<QueuedCommit* const> group, CommitPlan& plan,
                          const absl::StatusOr<uint64_t>& written, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_, mu_);
  void ApplyCommits(CommitPlan& plan, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Nodes (directory_nodes.cc).
  absl::StatusOr<RegistrationResult> AdmitNode(const NodeRegistration& reg, uint64_t& ticket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t DropNodeContents(NodeId id, CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkSilentNodesDown(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetGoneNodes(absl::Time now, CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AwaitRestartedNodes(const std::function<bool()>& waiting) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RequestProbe() ABSL_LOCKS_EXCLUDED(probe_mu_);
  CopyLocation CopyLocationOf(const ObjectCopy& copy, uint64_t length, wire::Access access,
                              int64_t expires_unix_ms) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  ObjectInfo InfoOf(const ObjectRecord& object, wire::Access access, int64_t expires_unix_ms)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Capability Grant(const NodeEntry& node, CapabilityUse use, int64_t expires_unix_ms) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool HasLiveCopy(const ObjectRecord& object) ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Copies, pins, leases and held memory (directory_lifecycle.cc).
  int64_t NowMs() const;
  bool InRestartGrace(int64_t now_ms) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Account(const ObjectEntry& entry, int sign) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetPinned(ObjectEntry& entry, bool pinned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeCopy(const ObjectCopy& copy, uint64_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Release PlanRelease(std::vector<ObjectCopy> copies, uint64_t length, int64_t lease_until_unix_ms,
                      CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Release PlanPendingRelease(const PendingPut& pending, CatalogBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyRelease(const Release& release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Eviction (directory_eviction.cc).
  absl::StatusOr<std::vector<NodeEntry*>> PlaceCopies(std::string_view key, uint64_t length,
                                                      int copies, std::span<const NodeId> exclude,
                                                      bool may_evict = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EvictObjects(std::span<const std::string> keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A put found no room and nothing to evict now: when room may come on
  // one of the `eligible` nodes without anyone's help (a lease, held extent
  // or reservation there ends); nullopt: never (pinned, other tenants').
  std::optional<int64_t> RoomMayComeAt(std::span<NodeEntry* const> eligible, uint64_t rounded,
                                       int64_t now_ms, const Placement::MayEvict& may_evict)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // ResourceExhausted saying `what`, with the hint to try again once room
  // may have come (unipool/common/retry_after.h).
  absl::Status PoolFullForNow(std::string_view what, int64_t room_at_ms, int64_t now_ms);
  void EvictAboveWatermarks(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts the coldest objects of `key`'s tenant until it may store `extra`
  // more allocated bytes within its storage quota; ResourceExhausted when
  // the rest is pinned or leased (tenants.h).
  absl::Status MakeTenantRoom(std::string_view key, uint64_t extra)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `victim` may be evicted for a put of `for_key` (empty: sweeps).
  bool MayEvictFor(const ObjectEntry& victim, std::string_view for_key) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Brings tenants past their storage quota (a pre-handed commit, a quota
  // lowered) back within it, their own coldest objects first.
  void EvictTenantsOverQuota() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when pinning `key` (or every key under it) keeps each tenant within
  // its pin quota.
  absl::Status CheckPinQuotas(std::string_view key, bool prefix) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Queues the write capabilities of the put of `key` (version `version`;
  // "" for an aborted put) for revocation (directory_revocations.cc).
  void QueueRevocation(std::string_view key, uint64_t version, std::span<const ObjectCopy> copies,
                       uint64_t length, int64_t deadline_unix_ms) ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // The flash tier (directory_flash.cc).
  bool HasLiveFlash(const ObjectRecord& object) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // An object on flash only, as a lookup returns it when it was not read
  // back into memory: its copies on live nodes' flash, each with a FlashRead
  // capability; NotFound when no such node is up.
  absl::StatusOr<ObjectInfo> FlashInfoOf(const ObjectRecord& object, int64_t expires_unix_ms)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Queues a new object's memory copies on nodes with flash for demotion.
  void QueueDemotion(const ObjectEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An evicted object with a flash copy: its memory copies are freed (by the
  // caller) and it stays, on flash only.
  void KeepOnFlashOnly(ObjectEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the flash copies of these objects (objects on flash only go).
  absl::Status DropFlashCopies(std::span<const std::string> keys)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<uint64_t> ReserveForPromotion(NodeEntry& node, const ObjectEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyPromotion(const FlashPlan& plan, const absl::Status& result, CatalogBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AdoptFlashPage(NodeEntry& node, const FlashPlan& page, int64_t now_ms,
                              CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Drains (directory_drain.cc).
  void QueueIfDraining(const ObjectEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  DrainProgress ProgressOf(const NodeEntry& node) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<std::string> KeysWithCopyOn(NodeId id, bool skip_moving)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  MoveOutcome PlanMove(NodeEntry& node, const std::string& key, int64_t deadline_unix_ms,
                       CatalogBatch& batch, std::vector<MovePlan>& plans)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PlanNodeMoves(NodeEntry& node, size_t max, int64_t now_ms, int64_t deadline_unix_ms,
                     CatalogBatch& batch, std::vector<MovePlan>& plans,
                     uint64_t* byte_budget = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MovePlan PlanCopy(const std::string& key, const ObjectEntry& entry, const ObjectCopy& source,
                    NodeEntry& to, int64_t deadline_unix_ms, CatalogBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t PublishMove(const MovePlan& plan, bool copied) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Repairs (directory_repairs.cc).
  void PlanRepairs(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PlanRemadeCopies(size_t max, int64_t deadline_unix_ms, CatalogBatch& batch,
                        std::vector<MovePlan>& plans, uint64_t& byte_budget)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t CountUnderReplicated() ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<VerifyItem> CopiesToVerify(NodeId id) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status DropBadCopies(const VerifyPlan& plan, std::span<const VerifyItem> bad,
                             uint64_t& dropped, uint64_t& lost, uint64_t& ticket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DirectoryOptions options_;
  const HoldRule hold_;  // how long held memory stays held
  const std::unique_ptr<Catalog> catalog_;
  std::string pool_id_;                      // set by Open, then constant
  absl::Time started_ ABSL_GUARDED_BY(mu_);  // by options_.clock

  // Lock order: gate_mu_ (the commit gate: held by every mutation, and by a
  // commit group from its plan to its publication), then mu_, then
  // touch_mu_ and probe_mu_. Heartbeat times have a lock of their own.
  absl::Mutex gate_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  HeartbeatTimes heard_;
  absl::Mutex commit_queue_mu_ ABSL_ACQUIRED_AFTER(gate_mu_);
  std::vector<QueuedCommit*> commit_queue_ ABSL_GUARDED_BY(commit_queue_mu_);
  std::atomic<uint64_t> commit_calls_{0};
  std::atomic<uint64_t> commit_writes_{0};
  // Recency touches of lookups not applied yet (see ExclusiveLock).
  absl::Mutex touch_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<QueuedTouch> touches_ ABSL_GUARDED_BY(touch_mu_);

  NodeRegistry nodes_ ABSL_GUARDED_BY(mu_);
  ObjectTable objects_ ABSL_GUARDED_BY(mu_);
  Reservations reservations_ ABSL_GUARDED_BY(mu_);
  Placement placement_ ABSL_GUARDED_BY(mu_);
  Tenants tenants_ ABSL_GUARDED_BY(mu_);
  Repairs repairs_ ABSL_GUARDED_BY(mu_);
  PinSet pins_ ABSL_GUARDED_BY(mu_);
  DrainTracker drains_ ABSL_GUARDED_BY(mu_);
  HeldSpace held_ ABSL_GUARDED_BY(mu_);  // ids from the version counter
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t pinned_objects_ ABSL_GUARDED_BY(mu_) = 0;
  // Every object counts as leased until then (set at start-up).
  int64_t restart_grace_until_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> restart_settled_{false};  // MayAwaitRestartedNodes is false for good
  FabricBook fabric_;                         // its own lock
  // Probes due; the prober waits on it (apart from mu_, held across fsyncs).
  absl::Mutex probe_mu_ ABSL_ACQUIRED_AFTER(mu_);
  uint64_t probes_requested_ ABSL_GUARDED_BY(probe_mu_) = 0;
  uint64_t probes_taken_ ABSL_GUARDED_BY(probe_mu_) = 0;
  std::atomic<uint64_t> evictions_total_{0};
  std::atomic<uint64_t> pool_full_waits_{0};
  // The flash tier: new objects to demote (key, version), oldest first, and
  // the keys being promoted now.
  std::deque<std::pair<std::string, uint64_t>> demote_queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string, StringViewHash, StringViewEq> promoting_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> flash_in_use_{false};
  RevocationQueue revocations_;  // its own lock, taken after mu_
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DIRECTORY_H_
