// The pool as plain structs: nodes, the pool's totals, where an object lives,
// listings and request metrics. One definition, used alike by the directory
// (which fills them), the SDK (which decodes them off the wire with
// unipool/common/pool_codec.h) and the dashboard (which renders them).
// Installed with the SDK; depends on nothing but Abseil's time.
//
// Thread safety: plain values.
#ifndef UNIPOOL_POOL_TYPES_H_
#define UNIPOOL_POOL_TYPES_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace unipool {

// The directory's leave to read or write one copy's range
// (unipool/common/capability.h issues and checks it; `access` is a
// wire::Access). Empty (access 0) in pools without a key.
struct Capability {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint8_t access = 0;
  int64_t expires_unix_ms = 0;
  std::array<uint8_t, 32> mac{};

  bool present() const { return access != 0; }
};

using NodeId = uint32_t;

// Copies a put may ask for (PutOptions::replicas), each on a distinct node;
// the SDK and the directory both refuse more.
inline constexpr int kMaxReplicas = 16;
// Largest object: one TCP frame's payload.
inline constexpr uint64_t kMaxObjectBytes = 1ull << 30;

// What a node's own data path served (TCP requests, RDMA requests it
// handled), as of its last heartbeat. Same-host (shm) and one-sided RDMA
// transfers cost the node nothing and do not count.
// A node's flash tier as its store counts it since the node started
// (docs/flash.md, Counters); all 0 for a node without one.
struct FlashStoreCounts {
  uint64_t capacity = 0;  // --ssd-size
  uint64_t bytes = 0;     // page bytes on flash
  uint64_t objects = 0;   // pages on flash
  uint64_t demotions = 0;
  uint64_t refused = 0;
  uint64_t hits = 0;
  uint64_t promotions = 0;
  uint64_t misses = 0;
  uint64_t lru_drops = 0;
  uint64_t bad_pages = 0;
  uint64_t write_failures = 0;
  uint64_t recovered = 0;  // pages found intact at start
};

struct NodeCounters {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t reads = 0;
  uint64_t writes = 0;
  FlashStoreCounts flash;  // from the node's heartbeats
};

// Which copies an eviction on request removes (docs/flash.md): memory
// copies (demoted to flash where a node's flash holds them), flash copies,
// or all (the objects go).
enum class EvictTier : uint8_t { kMemory = 0, kFlash = 1, kAll = 2 };

// A node's flash tier as the directory records it (docs/flash.md).
struct FlashTierState {
  uint64_t objects = 0;     // objects with a copy on its flash
  uint64_t bytes = 0;       // their bytes
  uint64_t demotions = 0;   // memory copies evicted to flash instead of dropped
  uint64_t promotions = 0;  // flash copies read back into memory (flash hits)
  uint64_t drops = 0;       // flash copies found gone at a promotion (LRU, bad media)
};

// One RDMA port of a node: a Thunderbolt cable's end, a RoCE NIC port
// (schema RdmaPort; unipool/common/rdma_port.h formats and checks it).
struct RdmaPortInfo {
  std::string device;  // "rdma_en2", "mlx5_0", "rxe0"
  uint8_t port = 1;    // 1-based port of the device
  std::array<uint8_t, 16> gid{};
  uint8_t ipv4_prefix = 0;  // prefix length of the GID's IPv4 subnet; 0 = unknown
  uint8_t mtu = 0;          // ibv_mtu enum value: 1 = 256 ... 5 = 4096 bytes
  bool rc = false;          // reliable-connected QPs work (not on Apple's fabric)
  uint32_t rate_mbps = 0;   // link rate; 0 = unknown
  bool active = false;      // PORT_ACTIVE with a usable GID

  bool operator==(const RdmaPortInfo&) const = default;
};

// One RDMA path from a client to a node: a local port joined to one of the
// node's ports (on a Thunderbolt mesh, one cable), with its counters.
struct RdmaPathStats {
  std::string node_address;
  std::string local_port;   // "rdma_en2:1"
  std::string remote_port;  // the node's
  std::string mode;         // "rdma-rc" / "rdma-uc"
  bool up = false;          // false: taken out of use after a failure
  uint64_t bytes = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;   // failures that took the path out of use
  uint64_t retries = 0;  // UC transfers sent again after a loss
  std::string last_error;
};

// A node a client reaches over TCP only, and why.
struct TcpFallbackStats {
  std::string node_address;
  std::string reason;
};

// What one client last reported of its RDMA paths (unipoolctl fabric).
struct ClientFabric {
  std::string host;    // the client's machine
  std::string client;  // its ClientOptions::name
  absl::Duration age;  // since the directory got the report
  std::vector<RdmaPathStats> paths;
  std::vector<TcpFallbackStats> fallbacks;
};

// One pool node as the directory sees it.
struct NodeState {
  NodeId node_id = 0;
  std::string name;          // stable identity chosen by the node
  std::string host;          // its machine
  std::string data_address;  // HOST:PORT of its data path
  bool up = false;
  // A client reported it unreachable and the directory is probing it: not
  // up (no reads, no new objects) until it answers.
  bool suspect = false;
  uint64_t capacity = 0;  // slab bytes
  uint64_t used = 0;      // allocated bytes (objects, reservations, held)
  uint64_t largest_free = 0;
  uint64_t objects = 0;                 // copies on it
  std::vector<std::string> transports;  // "tcp", "shm", "rdma-rc", ...
  bool huge_pages = false;
  absl::Duration since_heartbeat;  // zero while down
  // Being drained: takes no new objects; its objects are moving elsewhere.
  bool draining = false;
  uint64_t pinned = 0;     // copies of pinned objects on it
  uint64_t leased = 0;     // copies of objects under a read lease
  uint64_t evictions = 0;  // copies evicted from it since the directory started
  uint64_t held = 0;       // bytes of `used` held for read leases and moves
  NodeCounters counters;
  std::vector<RdmaPortInfo> rdma_ports;  // as of its last registration or beat
  FlashTierState flash;                  // all 0 without a flash tier (counters.flash.capacity 0)
};

// The whole pool: its nodes (by node id) and its totals.
// A tenant (a token's prefix, directory/include/unipool/directory/
// tenants.h) and what it holds, in allocated bytes (each copy rounded up to
// the allocation unit).
struct TenantState {
  std::string prefix;
  uint64_t storage_quota = 0;  // 0: unlimited
  uint64_t pin_quota = 0;      // 0: unlimited
  uint64_t objects = 0;
  uint64_t stored = 0;  // its committed objects
  uint64_t pinned = 0;  // of which pinned
};

// One directory of a replicated pool (unipool-directory --etcd), as its
// leader reports it; unipoolctl marks those that do not answer Unreachable.
enum class DirectoryRole { kLeader, kStandby, kUnreachable };

struct DirectoryState {
  std::string address;              // client address; "" while not known yet
  std::string replication_address;  // its --replication-listen
  DirectoryRole role = DirectoryRole::kLeader;
  int64_t term = 0;       // the leader's term; a standby's: of the last write it has
  uint64_t position = 0;  // the last write of that term it has
  uint64_t lag = 0;       // writes it is behind the leader
};

// "leader", "standby" or "unreachable" (status pages and their JSON).
inline std::string_view DirectoryRoleName(DirectoryRole role) {
  switch (role) {
    case DirectoryRole::kLeader:
      return "leader";
    case DirectoryRole::kStandby:
      return "standby";
    case DirectoryRole::kUnreachable:
      break;
  }
  return "unreachable";
}

struct PoolState {
  std::vector<NodeState> nodes;
  uint64_t objects = 0;
  uint64_t pending_puts = 0;  // reservations not committed yet
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t pinned = 0;     // pinned objects
  uint64_t leased = 0;     // objects under a read lease now
  uint64_t evictions = 0;  // objects evicted since the directory started
  // Bytes of `used` that belong to no object: memory of removed, replaced or
  // moved objects held until their read leases end, and moves in flight.
  uint64_t held = 0;
  // Objects with a copy on a node that is not up (as of the directory's last
  // scan, once a second), and copies re-made on other nodes (re-replication)
  // since the directory started.
  uint64_t under_replicated = 0;
  uint64_t copies_rereplicated = 0;
  // The clients' RDMA paths: each client's newest report, a minute at most.
  std::vector<ClientFabric> fabric;
  // Tenants the directory knows (from their requests since it started), by
  // prefix; a tenant's token sees only those under its own prefix.
  std::vector<TenantState> tenants;
  // A replicated pool's directories, the leader first; empty for a lone one.
  std::vector<DirectoryState> directories;
  // The leader acknowledges writes no standby has (--allow-unreplicated,
  // no standby in sync): losing it would lose them.
  bool unreplicated = false;
};

// One copy of an object: where in which node's slab.
struct CopyLocation {
  NodeId node_id = 0;
  std::string node_address;  // the node's data address
  std::string node_host;     // the node's machine (a client reads its own first)
  bool node_up = false;
  uint64_t offset = 0;  // in the node's slab
  // The directory's leave to write (a reservation) or read (a lookup) this
  // copy; empty in pools without a key.
  Capability capability;
  // A lookup's copy on the node's flash only (no memory could be reserved to
  // read it back into): the node reads it from flash for the client (its
  // capability is a FlashRead one); `offset` is unused.
  bool on_flash = false;
};

// Where an object lives and what it is.
struct ObjectInfo {
  uint64_t length = 0;
  uint64_t version = 0;   // unique across the pool's life
  uint64_t checksum = 0;  // XXH3-64 of the bytes; 0 for a reservation
  // Every copy, each on a distinct node, in the directory's order.
  std::vector<CopyLocation> copies;
  // How long from the lookup the memory stays the object's (the read
  // lease): zero when the lookup gave none.
  absl::Duration lease;
};

// One committed object in a listing.
struct ListEntry {
  std::string key;
  uint64_t length = 0;
  uint64_t version = 0;
  int64_t created_unix_ms = 0;     // when it was committed
  std::vector<std::string> nodes;  // names of the nodes holding it
  bool pinned = false;
};

struct ListResult {
  std::vector<ListEntry> entries;  // in bytewise key order
  bool more = false;               // more keys follow: List again after the last
};

// What the directory served: totals since it started and per-second counts.
//   hits/misses = keys looked up and found/not found (hit rate = hits / gets)
//   puts = objects committed; removes = keys removed; evictions = objects
//   the directory evicted.
struct PoolMetrics {
  struct Second {
    int64_t unix_seconds = 0;
    uint32_t puts = 0;
    uint32_t hits = 0;
    uint32_t misses = 0;
    uint32_t removes = 0;
    uint32_t evictions = 0;
  };
  uint64_t uptime_ms = 0;  // since the directory started
  uint64_t puts = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t removes = 0;
  uint64_t evictions = 0;
  std::vector<Second> history;  // whole seconds, oldest first
};

}  // namespace unipool

#endif  // UNIPOOL_POOL_TYPES_H_
