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
// Every commit and remove is written to the catalog (fsync'ed when
// options.sync) before it is acknowledged.
//
// Thread safety: thread-safe. Mutations are serialised by one mutex; lookups
// share it.
#ifndef UNIPOOL_STORE_DIRECTORY_H_
#define UNIPOOL_STORE_DIRECTORY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/string_map.h"
#include "store/allocator.h"
#include "store/catalog.h"
#include "store/records.h"

namespace unipool {

// Largest object: one TCP frame's payload.
inline constexpr uint64_t kMaxObjectBytes = 1ull << 30;

struct DirectoryOptions {
  // A reservation not committed within this time is reclaimed. Default 30 s:
  // an 80 MiB page takes well under a second on any link unipool targets.
  absl::Duration put_timeout = absl::Seconds(30);
  // A node whose last heartbeat is older than this is marked down.
  // Default 5 s (nodes beat every second).
  absl::Duration node_timeout = absl::Seconds(5);
  // fsync commits and removes before acknowledging them. Default true;
  // false survives a crash of the directory process but not of the machine.
  bool sync = true;
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
};

struct RegistrationResult {
  NodeId node_id = 0;
  bool readmitted = false;       // the node's objects were kept
  uint64_t objects_dropped = 0;  // objects lost with a replaced slab
};

struct NodeCounters {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t reads = 0;
  uint64_t writes = 0;
};

// Where an object's bytes live.
struct Location {
  NodeId node_id = 0;
  std::string node_address;
  bool node_up = false;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t version = 0;
  uint64_t checksum = 0;
};

struct PutRequest {
  std::string_view key;
  uint64_t length = 0;
  bool replace = false;
};

struct Reservation {
  uint64_t put_id = 0;
  Location location;
};

struct CommitRequest {
  uint64_t put_id = 0;
  uint64_t checksum = 0;
};

struct NodeStatus {
  NodeId node_id = 0;
  std::string name;
  std::string host;
  std::string data_address;
  bool up = false;
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t largest_free = 0;
  uint64_t objects = 0;
  std::vector<std::string> transports;
  bool huge_pages = false;
  absl::Duration since_heartbeat;
  NodeCounters counters;
};

struct PoolStatus {
  std::vector<NodeStatus> nodes;
  uint64_t objects = 0;
  uint64_t pending_puts = 0;
  uint64_t capacity = 0;
  uint64_t used = 0;
};

// One committed object, as `unipoolctl ls` shows it.
struct ListedObject {
  std::string key;
  uint64_t length = 0;
  uint64_t version = 0;
  int64_t created_unix_ms = 0;
  std::vector<std::string> nodes;  // names of the nodes holding it
  bool pinned = false;
};

struct ObjectList {
  std::vector<ListedObject> entries;
  bool more = false;  // keys follow the last entry
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
  // lost, so its objects are dropped.
  absl::StatusOr<RegistrationResult> RegisterNode(const NodeRegistration& registration);

  // NotFound when the node or its slab is unknown (it must register again).
  absl::Status Heartbeat(NodeId node_id, uint64_t slab_id, const NodeCounters& counters);

  // One result per request, in order. AlreadyExists for a committed key
  // without replace; ResourceExhausted when no live node has room;
  // InvalidArgument for a bad key or length.
  std::vector<absl::StatusOr<Reservation>> PutStart(std::span<const PutRequest> requests);

  // One status per request. NotFound for an unknown or expired put id;
  // AlreadyExists when the key was committed meanwhile without replace.
  std::vector<absl::Status> PutCommit(std::span<const CommitRequest> requests);

  // Releases reservations (a client that failed to write). Unknown ids are
  // ignored.
  void PutAbort(std::span<const uint64_t> put_ids);

  // NotFound for keys that are not committed.
  std::vector<absl::StatusOr<Location>> Lookup(std::span<const std::string_view> keys);
  std::vector<bool> Exists(std::span<const std::string_view> keys);
  // NotFound for keys that are not committed.
  std::vector<absl::Status> Remove(std::span<const std::string_view> keys);

  PoolStatus Status();

  // Up to `limit` committed keys that start with `prefix` and sort after
  // `start_after` (bytewise), in order. Costs a scan of the whole map (an
  // admin request, not a data-path one).
  ObjectList List(std::string_view prefix, std::string_view start_after, size_t limit);

  // Reclaims expired reservations and marks silent nodes down. Called
  // periodically by the service.
  void Tick();

  absl::Duration put_timeout() const { return options_.put_timeout; }

 private:
  struct Node {
    NodeRecord record;
    SlabAllocator allocator;
    bool up = false;
    bool huge_pages = false;
    uint64_t objects = 0;
    NodeCounters counters;
  };

  Directory(std::unique_ptr<Catalog> catalog, DirectoryOptions options)
      : options_(std::move(options)), catalog_(std::move(catalog)) {}
  absl::Status Rebuild(CatalogContents contents);

  Node* FindNode(NodeId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Node* PickNode(uint64_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Location LocationOf(const ObjectRecord& object) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void FreeObjectSpace(const ObjectRecord& object) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleasePending(uint64_t put_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t DropNodeContents(NodeId id, CatalogBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Records when node `id` was last heard from; needs only liveness_mu_.
  void NoteHeartbeat(NodeId id, absl::Time when, bool only_if_known)
      ABSL_LOCKS_EXCLUDED(liveness_mu_);
  absl::Time LastHeard(const Node& node) ABSL_LOCKS_EXCLUDED(liveness_mu_);

  const DirectoryOptions options_;
  const std::unique_ptr<Catalog> catalog_;

  // Heartbeat arrival times live apart from mu_: mu_ is held across catalog
  // fsyncs, and a directory busy writing must never mistake its own delay in
  // reading a heartbeat for the node's silence. Lock order: mu_, then
  // liveness_mu_.
  absl::Mutex liveness_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<NodeId, absl::Time> last_heard_ ABSL_GUARDED_BY(liveness_mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<NodeId, std::unique_ptr<Node>> nodes_ ABSL_GUARDED_BY(mu_);
  StringMap<ObjectRecord> objects_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, PendingPut> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
  NodeId next_node_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace unipool

#endif  // UNIPOOL_STORE_DIRECTORY_H_
