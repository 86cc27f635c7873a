// The directory's state machine: node registry, space allocation, the object
// map and the two-phase put. Durable in a Catalog (RocksDB); the network
// front end is DirectoryService (directory_service.h).
//
// Two-phase put:
//   PutStart  reserves space on a node and returns where to write; the
//             reservation is persisted (so a restart does not hand the same
//             bytes to someone else while a writer may still be writing) and
//             expires after options.put_timeout.
//   PutCommit makes the object visible atomically, with the checksum of the
//             bytes the client wrote. Objects are immutable; a commit over an
//             existing key is refused unless the put asked to replace.
// Pre-handed reservations (one directory round trip per put): a PutCommit
// may ask for reservations of given shapes (length, replicas) for the
// client's next puts. They are reserved without a key, persisted in the
// commit's catalog write, bound to the client's id and charged to its quota;
// a later put of that shape writes at once and names its key in its commit,
// which then checks it as PutStart would have. Unused ones expire and are
// reclaimed like any reservation.
// Every commit and remove is in the catalog's log before it is acknowledged,
// and on disk as options.sync says (at once, or within sync_interval). A
// commit is visible to lookups from the moment it is in the log: with
// kAlways, a reader may see it before its own fsync returns.
// Group commit (directory_commit.cc): PutCommit calls arriving together are
// planned as one batch, written to the log in one catalog write, and
// published together; the write runs without mu_ (lookups go on), under the
// commit gate, which keeps every other mutation out until the group is
// published, so the log and the map change in the same order.
//
// Lifecycle (directory_lifecycle.cc; eviction in directory_eviction.cc,
// drains in directory_drain.cc with drain_tracker.h, pins in pin_set.h):
//   Replicas  a put may ask for N copies, reserved on N distinct live nodes
//             that are not draining; a lookup returns every copy.
//   Leases    a lookup leases the object for options.lease: until then it is
//             not evicted and, once removed, evicted or moved, its memory is
//             held (not reused). After a restart every object counts as
//             leased for one lease period (leases are not persisted).
//   Eviction  least recently used, unpinned, unleased objects go when a node
//             or the pool passes options.high_watermark (down to
//             low_watermark), and whenever a put or a move needs room.
//   Pins      key and prefix pins (durable); pinned objects are never evicted.
//   Node loss an object whose copies are all on down nodes does not Exist
//             and may be put again; a node back with the same slab keeps its
//             copies, which the service then verifies (ChecksumPlan); with a
//             new slab its copies are dropped (objects with another copy
//             survive).
//   Drain     a draining node takes no new objects; PlanMoves hands the
//             service copies to move node to node, FinishMove publishes them.
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
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "unipool/common/capability.h"
#include "unipool/common/string_map.h"
#include "unipool/directory/allocator.h"
#include "unipool/directory/catalog.h"
#include "unipool/directory/client_quota.h"
#include "unipool/directory/drain_tracker.h"
#include "unipool/directory/fabric_book.h"
#include "unipool/directory/node_health.h"
#include "unipool/directory/object_table.h"
#include "unipool/directory/pin_set.h"
#include "unipool/directory/records.h"
#include "unipool/pool_types.h"

namespace unipool {

struct DirectoryOptions {
  // A reservation not committed within this time is reclaimed. Default 30 s:
  // an 80 MiB page takes well under a second on any link unipool targets.
  absl::Duration put_timeout = absl::Seconds(30);
  // A node whose last heartbeat is older than this is marked down.
  // Default 5 s (nodes beat every second). A node a client reports
  // unreachable is probed and marked down at once instead (node_health.h).
  absl::Duration node_timeout = absl::Seconds(5);
  // When an acknowledged commit or remove is on disk. Always: it is in
  // RocksDB's log before the acknowledgement (a crash of the directory
  // process loses nothing). kInterval (default): the log is fsync'ed in the
  // background every sync_interval, so a crash of the machine loses at most
  // the last interval of commits (their slab space is reclaimed when the
  // nodes re-register: allocations are rebuilt from the catalog). kAlways:
  // fsync'ed before the acknowledgement, one fsync shared by the commits
  // arriving together, with no directory lock held across it.
  SyncMode sync = SyncMode::kInterval;
  absl::Duration sync_interval = absl::Milliseconds(100);
  // After a restart, puts and lookups that need a node known from the
  // catalog but not registered again wait up to this long for it (nodes
  // re-register within ~100 ms of the directory listening). Default 2 s;
  // bounded so that a node that died with the directory costs at most this.
  absl::Duration restart_grace = absl::Seconds(2);
  // A node down this long has its copies re-made on other nodes, node to
  // node (objects with another live copy). Default 10 s: a node restarted
  // with its slab (`--slab-name`) is back well before, and keeps its copies.
  absl::Duration rereplicate_after = absl::Seconds(10);
  // Bytes per second re-replication may copy. Default 256 MiB/s: a fraction
  // of any link unipool targets, so engines' traffic keeps its bandwidth.
  uint64_t rereplicate_bytes_per_second = 256ull << 20;
  // A lookup leases the object for this long: it is not evicted and its
  // memory is not reused before the lease ends (readers may read it without
  // asking again). Default 10 s. Zero: no leases (readers then rely on the
  // checksum alone to detect reuse).
  absl::Duration lease = absl::Seconds(10);
  // Background eviction starts when a node's (or the pool's) used bytes pass
  // high_watermark of its capacity and stops at low_watermark. Defaults 0.90
  // and 0.80: headroom so that puts rarely have to evict synchronously.
  // A put that finds no room evicts what it needs regardless.
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  // A node not heard from for this long (while this directory ran) is
  // forgotten: its record and its copies are dropped (objects with a copy
  // elsewhere survive), and its name is free for a node of another identity.
  // Default 7 days: a machine away for repairs comes back well before.
  absl::Duration forget_node_after = absl::Hours(24 * 7);
  // What one client may hold reserved and uncommitted (client_quota.h).
  ClientQuotaLimits client_quota;
  // A pool with a key: every location handed out carries the directory's
  // capability to use it (unipool/common/capability.h; nodes refuse reads,
  // writes and copies without one): write capabilities valid for the
  // reservation's lease, read capabilities for read_capability_lifetime.
  // Default none: a pool without a key issues none.
  std::optional<CapabilityKey> capabilities;
  // Default 5 minutes: well past any read and the location cache's trust,
  // short enough that a leaked capability soon stops working.
  absl::Duration read_capability_lifetime = kReadCapabilityLifetime;
  // Time source; tests inject a fake clock.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

struct NodeRegistration {
  std::string name;
  std::string host;
  std::string data_address;
  uint64_t slab_id = 0;
  uint64_t slab_size = 0;
  std::vector<std::string> transports;
  bool huge_pages = false;
  // The node's persistent secret; a name held by a node with an identity is
  // only taken again with the same one. Empty: none (it may only take a name
  // no identity holds).
  std::string identity;
  // The pool the node last joined; empty: none. Another pool's node is
  // refused (FailedPrecondition).
  std::string pool_id;
  std::vector<RdmaPortInfo> rdma_ports;  // shown to operators, not persisted
};

struct RegistrationResult {
  NodeId node_id = 0;
  bool readmitted = false;       // the node's objects were kept
  uint64_t objects_dropped = 0;  // objects lost with a replaced slab
  std::string pool_id;           // this directory's pool
};

struct PutRequest {
  std::string_view key;
  uint64_t length = 0;
  bool replace = false;
  int replicas = 1;  // 1..kMaxReplicas copies on distinct nodes
  // The client reserving (ClientQuota); empty: not limited.
  std::string_view owner;
  // The client's random id: only a commit or abort from the same client
  // (and owner) is accepted. 0: unbound.
  uint64_t client_id = 0;
};

// Where to write a put's copies (checksum 0, lease zero).
// `put_id` is random (what the commit names); `location.version` is the
// version the object will have.
struct Reservation {
  uint64_t put_id = 0;
  ObjectInfo location;
};

struct CommitRequest {
  uint64_t put_id = 0;
  uint64_t checksum = 0;
  // Nodes whose copy the client could not write: the object is committed
  // with its other copies (at least one must remain).
  std::vector<NodeId> failed_nodes;
  // A pre-handed reservation's key and replace flag (empty key: a PutStart
  // reservation, whose key was given then).
  std::string_view key;
  bool replace = false;
};

// Who sends a PutCommit or PutAbort: pre-handed reservations are bound to
// the client id and charged to the owner.
struct Committer {
  std::string_view owner;  // the quota owner, as PutRequest::owner
  uint64_t client_id = 0;  // the client's random id; 0: none are asked or used
};

// Pre-handed reservations wanted: `count` of `length` bytes with `replicas`
// copies.
struct ReserveShape {
  uint64_t length = 0;
  int replicas = 1;
  uint32_t count = 0;
};

// What one client may hold pre-handed: a few batches' worth, and never more
// than a share of the pool (they are reserved without eviction).
inline constexpr uint64_t kMaxPrehandedPerClient = 1024;
inline constexpr uint64_t kMaxPrehandedBytesPerClient = 256ull << 20;
inline constexpr uint64_t kPrehandedCapacityShare = 8;  // at most 1/8 of the live pool

// How far a drain has come.
struct DrainProgress {
  NodeId node_id = 0;
  std::string name;
  bool draining = false;
  uint64_t objects = 0;  // copies still on the node
  uint64_t used = 0;     // bytes still allocated there (objects, puts, held)
  uint64_t moves_in_flight = 0;
  bool done = false;  // draining and nothing left: safe to power off
  // Why the drain cannot finish now (no room elsewhere, objects with no
  // live copy); OK while it progresses.
  absl::Status blocked;
};

// One copy to move node to node (drain).
struct MovePlan {
  uint64_t move_id = 0;  // the held extent reserving the target
  std::string key;
  uint64_t version = 0;
  uint64_t length = 0;
  uint64_t checksum = 0;
  NodeId from_node = 0;  // the draining (or down) node whose copy is replaced
  uint64_t from_offset = 0;
  NodeId source_node = 0;  // where the bytes are read (from_node if up)
  std::string source_address;
  uint64_t source_offset = 0;
  NodeId target_node = 0;
  std::string target_address;
  uint64_t target_offset = 0;
  bool repair = false;  // re-replication (from_node is down), not a drain
  // A copy made again (one failed its checksum and was dropped): nothing is
  // replaced, from_node and from_offset are unset.
  bool new_copy = false;
  // Pools with a key: the source node's leave to copy the range to exactly
  // this target, and the target's leave to write it (both until the held
  // extent's deadline).
  Capability copy_capability;
  Capability target_capability;
};

// Copies of one readmitted node to checksum against the catalog.
struct VerifyItem {
  std::string key;
  uint64_t version = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t checksum = 0;
};
struct VerifyPlan {
  NodeId node_id = 0;
  uint64_t slab_id = 0;
  std::string address;
  std::vector<VerifyItem> items;
};

class Directory {
 public:
  // Opens the catalog at `db_path` and rebuilds the map and every node's
  // allocations from it. Known nodes start down until they register again.
  static absl::StatusOr<std::unique_ptr<Directory>> Open(const std::string& db_path,
                                                         DirectoryOptions options);

  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

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

  // --- faults (directory_faults.cc) ---

  // A client could not reach these nodes: each up one becomes suspect
  // (no reads, no placements) until the prober's answer. Unknown ids are
  // ignored.
  void ReportUnreachable(std::span<const NodeId> nodes);
  // A probe the prober owes: which node, where, and which suspicion.
  struct ProbePlan {
    NodeId node_id = 0;
    std::string address;
    uint64_t epoch = 0;
  };
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
  // Evicts every unpinned, unleased object whose key starts with `prefix`.
  absl::StatusOr<uint64_t> Evict(std::string_view prefix);

  // Starts (or, with undrain, stops) draining the node named `node` (its
  // name or data address) and reports progress. NotFound for an unknown node.
  absl::StatusOr<DrainProgress> Drain(std::string_view node, bool undrain);
  // Up to `max` copies to move off draining nodes, each with its target
  // reserved. The caller copies the bytes and calls FinishMove for each.
  std::vector<MovePlan> PlanMoves(size_t max);
  // Publishes a finished move (the target's copy replaces the drained one)
  // when `copied` and the object is unchanged; otherwise releases the target.
  void FinishMove(const MovePlan& plan, bool copied);

  // A readmitted node whose copies have not been verified yet, if any.
  std::optional<VerifyPlan> PlanVerification();
  // Drops the copies whose checksums did not match (`bad`) and marks the
  // node verified. Ignored when the node re-registered meanwhile.
  // When `result` is an error the node stays unverified (planned again).
  void FinishVerification(const VerifyPlan& plan, const absl::Status& result,
                          std::span<const VerifyItem> bad);

  uint64_t evictions() const { return evictions_total_.load(std::memory_order_relaxed); }
  absl::Duration lease() const { return options_.lease; }

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
  struct Node {
    NodeRecord record;
    SlabAllocator allocator;
    NodeHealth health{absl::InfinitePast()};
    bool up() const { return health.up(); }
    bool huge_pages = false;
    std::vector<RdmaPortInfo> rdma_ports;
    bool registered_since_start = false;  // by this directory process
    uint64_t objects = 0;                 // copies on it
    NodeCounters counters;
    uint64_t pinned = 0;      // copies of pinned objects
    uint64_t evictions = 0;   // copies evicted since start
    uint64_t held_bytes = 0;  // allocated to held extents
    bool unverified = false;  // readmitted; copies not yet checksummed
    bool verifying = false;   // a VerifyPlan is out
    // The copies it held when readmitted: what verification checks (copies
    // put there afterwards were written and checksummed by their clients).
    std::vector<VerifyItem> readmitted_copies;
    int64_t next_eviction_scan_ms = 0;
  };

  // Copies of a removed, replaced or moved object to free, or to hold until
  // its lease ends (then `held` lists the held extents).
  struct Release {
    std::vector<ObjectCopy> copies;
    uint64_t length = 0;
    std::vector<HeldExtent> held;
  };

  // A PutCommit batch being planned: what is accepted, what is rejected and
  // what the accepted commits replace, with the catalog write for all of it.
  struct CommitPlan {
    struct Accepted {
      size_t member;  // the PutCommit call in the group
      size_t index;   // in that call's requests
      uint64_t put_id;
      std::string key;
      ObjectRecord object;
      std::vector<ObjectCopy> unwritten;  // reserved copies the client could not write
    };
    std::vector<Accepted> accepted;
    std::vector<uint64_t> rejected_ids;  // reservations to release
    std::vector<Release> releases;       // of the objects replaced
    absl::flat_hash_set<uint64_t> seen_ids;
    StringViewSet committed_keys;  // accepted so far (views into pending_)
    CatalogBatch batch;
  };

  Directory(std::unique_ptr<Catalog> catalog, DirectoryOptions options)
      : options_(std::move(options)), catalog_(std::move(catalog)), quota_(options_.client_quota) {}

  // The commit gate, then the exclusive side of mu_. Taking mu_ first
  // applies the recency touches that lookups queued under the shared side, so
  // nothing that orders by recency sees a stale list, and no queued pointer
  // outlives its entry (entries are only erased under mu_, after the queue is
  // applied).
  class ABSL_SCOPED_LOCKABLE ExclusiveLock {
   public:
    explicit ExclusiveLock(Directory* directory)
        ABSL_EXCLUSIVE_LOCK_FUNCTION(directory->gate_mu_, directory->mu_)
        : directory_(directory) {
      directory_->gate_mu_.Lock();
      directory_->mu_.Lock();
      directory_->ApplyTouches();
    }
    ~ExclusiveLock() ABSL_UNLOCK_FUNCTION() {
      directory_->mu_.Unlock();
      directory_->gate_mu_.Unlock();
    }
    ExclusiveLock(const ExclusiveLock&) = delete;
    ExclusiveLock& operator=(const ExclusiveLock&) = delete;

   private:
    Directory* const directory_;
  };
  // mu_ alone, exclusive, for a commit group's phases (its caller holds the
  // gate); applies the queued touches as ExclusiveLock does.
  class ABSL_SCOPED_LOCKABLE CommitPhaseLock {
   public:
    explicit CommitPhaseLock(Directory* directory) ABSL_EXCLUSIVE_LOCK_FUNCTION(directory->mu_)
        : directory_(directory) {
      directory_->mu_.Lock();
      directory_->ApplyTouches();
    }
    ~CommitPhaseLock() ABSL_UNLOCK_FUNCTION() { directory_->mu_.Unlock(); }
    CommitPhaseLock(const CommitPhaseLock&) = delete;
    CommitPhaseLock& operator=(const CommitPhaseLock&) = delete;

   private:
    Directory* const directory_;
  };
  // One PutCommit call waiting in the commit queue. Its outcome (results,
  // handed, ticket, done) is written by the group's leader under the gate.
  struct QueuedCommit {
    std::span<const CommitRequest> requests;
    Committer who;
    std::span<const ReserveShape> next;  // empty: no pre-handed reservations wanted
    std::vector<absl::Status> results;
    std::vector<Reservation> handed;
    uint64_t ticket = 0;  // the catalog write to await
    bool done = false;
  };
  struct QueuedTouch {
    ObjectEntry* entry;
    int64_t unix_ms;
  };
  // Lookups (shared lock) queue the entries they used; ApplyTouches makes
  // them the hottest of their lists, in order.
  void QueueTouches(std::span<ObjectEntry* const> entries, int64_t now_ms)
      ABSL_SHARED_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(touch_mu_);
  void ApplyTouches() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_LOCKS_EXCLUDED(touch_mu_);

  // Start-up: rebuild the map and every allocation from the catalog.
  absl::Status Rebuild(CatalogContents contents);
  absl::Status RebuildObjects(std::vector<std::pair<std::string, ObjectRecord>>& objects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RebuildReservations(std::vector<PendingPut>& pending_puts,
                                   const std::vector<HeldExtent>& held_extents)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks an extent of node `id` allocated; DataLoss when it overlaps or is
  // out of range (`what` names it in the message).
  absl::Status ClaimExtent(NodeId id, uint64_t offset, uint64_t length, std::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // PutStart's steps: the request's checks, then the reservation (added to
  // `batch`, written by the caller).
  absl::Status CheckPutRequest(const PutRequest& request) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Reservation> Reserve(const PutRequest& request, int64_t deadline_unix_ms,
                                      CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PutCommit's steps: accept or reject each item, plan what the accepted
  // ones replace, then (once the batch is written) change the map.
  absl::Status AcceptCommit(const CommitRequest& request, const Committer& who, size_t member,
                            size_t index, int64_t now_ms, CommitPlan& plan)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Commit groups (directory_commit.cc): takes every queued PutCommit call,
  // plans them under mu_, writes their one catalog batch without it and
  // publishes them under mu_ again, then marks each call done.
  void RunCommitGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  void PlanCommitGroup(std::span<QueuedCommit* const> group, int64_t now_ms, CommitPlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_, mu_);
  void PublishCommitGroup(std::span<QueuedCommit* const> group, CommitPlan& plan,
                          const absl::StatusOr<uint64_t>& written, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_, mu_);
  // The pre-handed reservation `pending`'s key for `request`, or why it
  // cannot be committed (not `who`'s, no key, a bad key).
  absl::StatusOr<std::string_view> PrehandedKey(const PendingPut& pending,
                                                const CommitRequest& request, const Committer& who)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Reserves pre-handed reservations of the `next` shapes for `who` into
  // `batch` and `reserved`, within its caps, without evicting.
  void ReserveNext(const Committer& who, std::span<const ReserveShape> next,
                   int64_t deadline_unix_ms, CatalogBatch& batch,
                   std::vector<Reservation>& reserved) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Allocates `copies` and records a reservation of them (PutStart's and
  // ReserveNext's common part).
  Reservation AddPending(PendingPut pending, std::span<Node* const> placed, CatalogBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PlanReplacements(CommitPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyCommits(CommitPlan& plan, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Remove's work under the lock: fills `results`, returns the catalog
  // ticket to await (0: nothing written).
  uint64_t RemoveObjects(std::span<const std::string_view> keys, std::vector<absl::Status>& results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RegisterNode's work under the lock; `ticket` is the catalog write's.
  absl::StatusOr<RegistrationResult> AdmitNode(const NodeRegistration& reg, uint64_t& ticket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // AdmitNode's checks: the name's identity and the node's pool.
  absl::Status CheckNodeClaim(const Node* known, const NodeRegistration& reg)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Tick: drops nodes silent for options.forget_node_after and refreshes
  // the last-seen time of nodes that are up (into `batch`).
  void ForgetGoneNodes(absl::Time now, CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After AwaitDurable: a failed fsync turns every OK result into its error.
  static void FailOkResults(const absl::Status& durable, std::string_view what,
                            std::vector<absl::Status>& results);

  Node* FindNode(NodeId id) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Node* FindNodeByName(std::string_view name) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Where `copy` is, with the capability to use it for `access` until
  // `expires_unix_ms` (in a pool with a key).
  CopyLocation CopyLocationOf(const ObjectCopy& copy, uint64_t length, wire::Access access,
                              int64_t expires_unix_ms) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  ObjectInfo InfoOf(const ObjectRecord& object, wire::Access access, int64_t expires_unix_ms)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The directory's leave for `use` on `node` until `expires_unix_ms`; none
  // in a pool without a key.
  Capability Grant(const Node& node, CapabilityUse use, int64_t expires_unix_ms) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool HasLiveCopy(const ObjectRecord& object) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ReleasePending(uint64_t put_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A random put id no live reservation has (PendingPut::put_id).
  uint64_t NewPutId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refunds what `pending` cost its owner's quota and its holder's caps
  // (when it leaves pending_).
  void Unaccount(const PendingPut& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bytes of every live node's slab (what client quotas are shares of).
  uint64_t LiveCapacity() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Drops every copy, reservation and held extent on node `id` (its slab is
  // gone); returns the number of objects lost with it.
  uint64_t DropNodeContents(NodeId id, CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Lifecycle helpers (directory_lifecycle.cc).
  int64_t NowMs() const;
  bool InRestartGrace(int64_t now_ms) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Adds (+1) or removes (-1) an entry's copies from the nodes' counters.
  void Account(const ObjectEntry& entry, int sign) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetPinned(ObjectEntry& entry, bool pinned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeCopy(const ObjectCopy& copy, uint64_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds to `batch` what releasing `copies` needs (held extents while
  // leased); ApplyRelease then changes memory once the batch is written.
  Release PlanRelease(std::vector<ObjectCopy> copies, uint64_t length, int64_t lease_until_unix_ms,
                      CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyRelease(const Release& release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddHeld(const HeldExtent& held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseHeld(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts these objects (absent keys are skipped): one catalog write.
  absl::Status EvictObjects(std::span<const std::string> keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `copies` distinct live, non-draining nodes outside `exclude` with room
  // for `length` bytes, evicting least recently used objects as needed.
  // Unavailable when too few nodes take objects; ResourceExhausted when
  // everything that could make room is pinned or leased.
  // Without `may_evict`, ResourceExhausted instead of evicting.
  absl::StatusOr<std::vector<Node*>> PlaceCopies(std::string_view key, uint64_t length, int copies,
                                                 std::span<const NodeId> exclude,
                                                 bool may_evict = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PlaceCopies' steps: the live, non-draining nodes outside `exclude` big
  // enough for `rounded` bytes (Unavailable / ResourceExhausted when fewer
  // than `copies`), and the coldest unleased evictable object with a copy on
  // one of them that lacks room (nullptr: none).
  absl::StatusOr<std::vector<Node*>> EligibleNodes(std::string_view key, uint64_t rounded,
                                                   int copies, std::span<const NodeId> exclude)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  const ObjectEntry* ColdestVictim(std::span<Node* const> eligible, uint64_t rounded,
                                   int64_t now_ms) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Background eviction (directory_eviction.cc): each node over its high
  // watermark, then the pool as a whole, at most `budget` objects per tick.
  void EvictAboveWatermarks(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictPoolAboveWatermark(int64_t now_ms, size_t& budget) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts from the coldest unleased object up, those `wanted` accepts, until
  // `done(freed per node, freed total)` holds or `budget` runs out (it is
  // decreased). Returns whether `done` was reached.
  using SweepWanted = std::function<bool(const ObjectEntry&)>;
  using SweepDone =
      std::function<bool(const absl::flat_hash_map<NodeId, uint64_t>& freed, uint64_t total)>;
  bool EvictSweep(const SweepWanted& wanted, const SweepDone& done, int64_t now_ms, size_t& budget)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Drains (directory_drain.cc).
  void QueueIfDraining(const ObjectEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  DrainProgress ProgressOf(const Node& node) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Every key with a copy on node `id` (optionally not those being moved).
  std::vector<std::string> KeysWithCopyOn(NodeId id, bool skip_moving)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // What planning one key's move found: nothing to say (planned, or nothing
  // to move), no live copy to read (`stuck`), or no room for it (`blocked`).
  struct MoveOutcome {
    bool stuck = false;
    absl::Status blocked;
  };
  // Plans moving `key`'s copy off draining `node`: reserves the target (a
  // held extent added to `batch`) and appends the plan to `plans`.
  MoveOutcome PlanMove(Node& node, const std::string& key, int64_t deadline_unix_ms,
                       CatalogBatch& batch, std::vector<MovePlan>& plans)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Plans moves off one draining (or repaired) node until `plans` holds
  // `max` or the moves' bytes use up `byte_budget` (when given), and records
  // why its drain is blocked, if it is.
  void PlanNodeMoves(Node& node, size_t max, int64_t now_ms, int64_t deadline_unix_ms,
                     CatalogBatch& batch, std::vector<MovePlan>& plans,
                     uint64_t* byte_budget = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Reserves room for a copy of `key` (`entry`) on `to`, read from `source`
  // (a held extent added to `batch`): the plan, with nothing to replace yet.
  MovePlan PlanCopy(const std::string& key, const ObjectEntry& entry, const ObjectCopy& source,
                    Node& to, int64_t deadline_unix_ms, CatalogBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Plans new copies of the objects in copies_to_remake_ (a copy failed its
  // checksum), within `byte_budget`; objects that cannot have one yet stay
  // queued.
  void PlanRemadeCopies(size_t max, int64_t deadline_unix_ms, CatalogBatch& batch,
                        std::vector<MovePlan>& plans, uint64_t& byte_budget)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // FinishMove's work under the lock; returns the catalog ticket to await
  // (0: nothing to wait for).
  uint64_t PublishMove(const MovePlan& plan, bool copied) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Verification: drops the copies of `plan`'s node listed in `bad` (still
  // current) from the catalog and the map; counts them and the objects left
  // with no copy, and sets `ticket` to the catalog write's (if any).
  absl::Status DropBadCopies(const VerifyPlan& plan, std::span<const VerifyItem> bad,
                             uint64_t& dropped, uint64_t& lost, uint64_t& ticket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Faults (directory_faults.cc): logs a state change of `node` in one line.
  void LogTransition(const Node& node, const std::optional<Transition>& t)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // After a restart, until options.restart_grace has passed, waits (mu_
  // released) while `waiting()` holds and some node known from the catalog
  // has not registered again.
  void AwaitRestartedNodes(const std::function<bool()>& waiting) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Keys to re-replicate: queues a repair of nodes down past the delay, ends
  // it for nodes back up, and recounts under-replicated objects (at most once
  // a second).
  void PlanRepairs(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Objects with a copy on a node not up (a scan of the map).
  uint64_t CountUnderReplicated() ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The bytes re-replication may plan now (token bucket).
  uint64_t RepairBudget(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Snapshot of `node`'s copies to verify (readmission).
  std::vector<VerifyItem> CopiesToVerify(NodeId id) ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Records when node `id` was last heard from; needs only liveness_mu_.
  void NoteHeartbeat(NodeId id, absl::Time when, bool only_if_known)
      ABSL_LOCKS_EXCLUDED(liveness_mu_);
  absl::Time LastHeard(const Node& node) ABSL_LOCKS_EXCLUDED(liveness_mu_);

  const DirectoryOptions options_;
  const std::unique_ptr<Catalog> catalog_;
  std::string pool_id_;                      // set by Open, then constant
  absl::Time started_ ABSL_GUARDED_BY(mu_);  // by options_.clock

  // Heartbeat arrival times live apart from mu_: mu_ may be held for a
  // while (an eviction sweep, a drain scan), and a busy directory must never
  // mistake its own delay in reading a heartbeat for the node's silence.
  // Lock order: mu_, then liveness_mu_.
  absl::Mutex liveness_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<NodeId, absl::Time> last_heard_ ABSL_GUARDED_BY(liveness_mu_);

  // The commit gate: held by every mutation (ExclusiveLock) and by a commit
  // group from its plan to its publication. Lock order: gate_mu_, then mu_.
  absl::Mutex gate_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  // PutCommit calls waiting for a group leader. Lock order: after gate_mu_.
  absl::Mutex commit_queue_mu_ ABSL_ACQUIRED_AFTER(gate_mu_);
  std::vector<QueuedCommit*> commit_queue_ ABSL_GUARDED_BY(commit_queue_mu_);
  std::atomic<uint64_t> commit_calls_{0};
  std::atomic<uint64_t> commit_writes_{0};
  // Recency touches of lookups not applied yet (see ExclusiveLock). Lock
  // order: mu_ (either side), then touch_mu_.
  absl::Mutex touch_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<QueuedTouch> touches_ ABSL_GUARDED_BY(touch_mu_);
  absl::flat_hash_map<NodeId, std::unique_ptr<Node>> nodes_ ABSL_GUARDED_BY(mu_);
  ObjectTable objects_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, PendingPut> pending_ ABSL_GUARDED_BY(mu_);
  ClientQuota quota_ ABSL_GUARDED_BY(mu_);
  // Pre-handed reservations out, per client id (count and bytes).
  struct Prehanded {
    uint64_t count = 0;
    uint64_t bytes = 0;
  };
  absl::flat_hash_map<uint64_t, Prehanded> prehanded_ ABSL_GUARDED_BY(mu_);
  // Ids of held extents come from the version counter.
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
  NodeId next_node_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, HeldExtent> held_ ABSL_GUARDED_BY(mu_);
  PinSet pins_ ABSL_GUARDED_BY(mu_);
  uint64_t pinned_objects_ ABSL_GUARDED_BY(mu_) = 0;
  DrainTracker drains_ ABSL_GUARDED_BY(mu_);
  // Every object counts as leased until then (set at start-up).
  int64_t restart_grace_until_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pool_next_eviction_scan_ms_ ABSL_GUARDED_BY(mu_) = 0;
  // Faults: when the restart grace ends (real time), nodes being repaired
  // (down past the delay), the repair byte budget, and the counts in status.
  absl::Time restart_wait_until_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> restart_settled_{false};  // MayAwaitRestartedNodes is false for good
  absl::flat_hash_set<NodeId> repairing_ ABSL_GUARDED_BY(mu_);
  uint64_t repair_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t repair_refill_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_repair_scan_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t under_replicated_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t copies_rereplicated_ ABSL_GUARDED_BY(mu_) = 0;
  // Objects (key, version) that lost a copy to a failed checksum, to be
  // given a new one. In memory: after a restart they stay one copy short.
  std::deque<std::pair<std::string, uint64_t>> copies_to_remake_ ABSL_GUARDED_BY(mu_);
  // Node state changes so far, and as of the last under-replicated count:
  // a count older than the last change is not reported (Status counts).
  std::atomic<uint64_t> liveness_changes_{0};
  uint64_t scanned_changes_ ABSL_GUARDED_BY(mu_) = 0;
  // Probes due; the prober waits on it (apart from mu_, held across fsyncs).
  FabricBook fabric_;  // its own lock
  absl::Mutex probe_mu_ ABSL_ACQUIRED_AFTER(mu_);
  uint64_t probes_requested_ ABSL_GUARDED_BY(probe_mu_) = 0;
  uint64_t probes_taken_ ABSL_GUARDED_BY(probe_mu_) = 0;
  std::atomic<uint64_t> evictions_total_{0};
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DIRECTORY_H_
