// The Directory's requests and results: node registration, the two-phase
// put (reservations, commits, pre-handed shapes), drains and moves, and the
// verification of readmitted slabs. Plain structs; the rules they follow are
// in directory.h.
#ifndef UNIPOOL_DIRECTORY_DIRECTORY_TYPES_H_
#define UNIPOOL_DIRECTORY_DIRECTORY_TYPES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "unipool/common/capability.h"
#include "unipool/directory/records.h"
#include "unipool/pool_types.h"

namespace unipool {

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
  uint64_t flash_capacity = 0;           // its flash tier (--ssd-size); 0: none
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
  // The owner's reservation quota in allocated bytes, from its token;
  // 0: the share of the pool in ClientQuotaLimits.
  uint64_t reservation_limit = 0;
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
  std::string_view owner;          // the quota owner, as PutRequest::owner
  uint64_t client_id = 0;          // the client's random id; 0: none are asked or used
  uint64_t reservation_limit = 0;  // as PutRequest::reservation_limit
};

// Pre-handed reservations wanted: `count` of `length` bytes with `replicas`
// copies.
struct ReserveShape {
  uint64_t length = 0;
  int replicas = 1;
  uint32_t count = 0;
};

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

// One page to write to a node's flash (FlashDemote) or to read from its
// flash into its memory (FlashPromote): the object's key and version, the
// node, and the range of its slab (the copy's, or the one reserved for the
// promotion).
struct FlashPlan {
  std::string key;
  uint64_t version = 0;
  uint64_t length = 0;
  uint64_t checksum = 0;
  NodeId node_id = 0;
  std::string address;
  uint64_t offset = 0;
};

// A probe the prober owes: which node, where, and which suspicion.
struct ProbePlan {
  NodeId node_id = 0;
  std::string address;
  uint64_t epoch = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DIRECTORY_TYPES_H_
