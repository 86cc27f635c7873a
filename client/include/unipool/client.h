// unipool client SDK: put and get pages and tensors in a unipool pool.
//
//   auto client = unipool::Client::Connect({.directory = "10.0.0.1:7300"});
//   if (!client.ok()) ...
//   absl::Status s = (*client)->Put("llama3-70b/layer.12/attn.k#shard3", bytes);
//   absl::StatusOr<std::vector<uint8_t>> page = (*client)->Get("prefix:9f2c...");
//
// Error codes tell the caller what to do (absl/status/status.h):
//   NotFound            the key is not in the pool.
//   AlreadyExists       Put of an existing key without replace.
//   Unavailable         a node or the directory is unreachable or down: retry
//                       later, or recompute the page.
//   ResourceExhausted   the pool has no room.
//   DataLoss            the bytes read do not match the stored checksum (never
//                       returned as data).
//   InvalidArgument     bad key, empty value, buffer too small.
//
// Thread safety: a Client is thread-safe; share one per process. Connections
// to the directory and nodes are pooled and reused.
#ifndef UNIPOOL_CLIENT_H_
#define UNIPOOL_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace unipool {

struct ClientOptions {
  // HOST:PORT of the directory. Default: a directory on this machine.
  std::string directory = "127.0.0.1:7300";
  // Shown in server logs.
  std::string name = "client";
  // Default 3 s to establish a connection.
  absl::Duration connect_timeout = absl::Seconds(3);
  // Default 30 s of silence inside one request before it fails Unavailable.
  absl::Duration io_timeout = absl::Seconds(30);
  // Idle connections kept per server (directory or node). Default 8: one per
  // concurrently active thread is ideal.
  int max_idle_connections = 8;
  // RDMA for page bytes. "auto" (default): one-sided verbs when this machine
  // has a device and the node serves RDMA (RC where both ends can, else UC,
  // as on Apple's Thunderbolt fabric), TCP otherwise. "rc" / "uc": require a
  // device and use that mode (UC is testable on RC hardware); Connect fails
  // without a device. "off": TCP only.
  std::string rdma = "auto";
  // RDMA device; empty = $UNIPOOL_RDMA_DEVICE, else the first active port.
  std::string rdma_device;
  // Same-host path for page bytes: a node on this machine hands over its
  // slab, and pages are copied straight between it and the caller's memory
  // (the node's CPU does nothing). Default true; each node falls back to the
  // transport above when it does not share its slab. Not used with rdma
  // "rc" or "uc", which ask for RDMA to every node.
  bool shm = true;
  // Locations of recently read objects, so a repeated get is one read from a
  // node with no directory round trip. Default 65536 entries; 0 disables.
  size_t location_cache_entries = 65536;
  // How long a cached location is used without asking the directory again.
  // Default zero: as long as the directory's read lease (10 s by default),
  // during which it does not reuse the memory. Longer trusts the checksum
  // alone to catch reuse (a get never returns wrong bytes either way, but a
  // key removed by another client stays readable while its memory is not
  // reused). A get from a stale location falls back to the directory.
  absl::Duration location_cache_ttl = absl::ZeroDuration();
};

struct PutOptions {
  // Overwrite an existing key. Default false: objects are immutable and a
  // second put of the same key fails AlreadyExists.
  bool replace = false;
  // Number of copies, each on a distinct node (1..number of live nodes).
  // Default 1. With N copies an object survives the loss of N-1 nodes; a get
  // reads the nearest live copy and falls back to another on failure.
  int replicas = 1;
};

// Per-client counters since Connect.
struct ClientStats {
  uint64_t puts = 0;
  uint64_t gets = 0;
  uint64_t bytes_put = 0;
  uint64_t bytes_got = 0;
  uint64_t directory_requests = 0;
  uint64_t node_requests = 0;
  uint64_t checksum_failures = 0;
  uint64_t connections_opened = 0;
  // The transport for page bytes: "shm", "rdma-rc", "rdma-uc" or "tcp"
  // (with shm, the one that served the last node request).
  std::string transport = "tcp";
  // Node requests served through shared memory (nodes on this machine).
  uint64_t shm_requests = 0;
  // Node requests served over RDMA, and over TCP (nodes without RDMA, or
  // transport "tcp").
  uint64_t rdma_requests = 0;
  uint64_t tcp_requests = 0;
  // UC transfers sent again after a loss.
  uint64_t rdma_retries = 0;
  // Gets served from a cached location (no directory round trip).
  uint64_t location_cache_hits = 0;
  // Reads from a cached location that were stale (memory reused, object
  // gone or moved, node gone) and went back to the directory.
  uint64_t stale_cached_reads = 0;
  // Reads that failed on one copy and were served by another.
  uint64_t replica_fallbacks = 0;
};

struct NodeState {
  uint32_t node_id = 0;
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
  uint64_t ms_since_heartbeat = 0;
  // Being drained: takes no new objects; its objects are moving elsewhere.
  bool draining = false;
  uint64_t pinned = 0;     // objects (copies) on this node that are pinned
  uint64_t leased = 0;     // objects (copies) on this node under a read lease
  uint64_t evictions = 0;  // copies evicted from this node since the directory started
  uint64_t held = 0;       // bytes of `used` held for read leases and moves
  // What the node's own data path served (TCP, RDMA requests it handled), as
  // of its last heartbeat; shared-memory and one-sided RDMA transfers cost
  // the node nothing and do not count.
  uint64_t node_reads = 0;
  uint64_t node_writes = 0;
  uint64_t node_bytes_read = 0;
  uint64_t node_bytes_written = 0;
};

struct PoolState {
  std::vector<NodeState> nodes;
  uint64_t objects = 0;
  uint64_t pending_puts = 0;
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t pinned = 0;     // pinned objects
  uint64_t leased = 0;     // objects under a read lease now
  uint64_t evictions = 0;  // objects evicted since the directory started
  // Bytes of `used` that belong to no object: memory of removed, replaced or
  // moved objects held until their read leases end, and moves in flight.
  uint64_t held = 0;
};

// Where an object lives (for tools; engines do not need it).
struct ObjectInfo {
  uint32_t node_id = 0;
  std::string node_address;
  bool node_up = false;
  uint64_t length = 0;
  uint64_t version = 0;
  uint64_t checksum = 0;
  // Every copy's node (the first is node_id), and which of them are up.
  std::vector<uint32_t> copy_node_ids;
  std::vector<bool> copy_nodes_up;
};

// One committed object in a listing (for tools).
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

// What the directory served, for dashboards (for tools).
struct PoolMetrics {
  struct Second {
    int64_t unix_seconds = 0;
    uint32_t puts = 0;    // objects committed
    uint32_t hits = 0;    // keys looked up and found
    uint32_t misses = 0;  // keys looked up and not found
    uint32_t removes = 0;
    uint32_t evictions = 0;
  };
  uint64_t uptime_ms = 0;  // since the directory started
  uint64_t puts = 0;       // totals since the directory started
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t removes = 0;
  uint64_t evictions = 0;
  std::vector<Second> history;  // whole seconds, oldest first
};

// A batch running in the background, returned by the *Async calls. Wait()
// blocks until it is done and returns its per-key results; Done() says
// whether Wait() would return at once. Copies share the batch. Destroying the
// last copy waits for the batch, so the caller's buffers are never written
// after the handle is gone.
//
// Thread safety: thread-safe.
template <typename Result>
class Pending {
 public:
  explicit Pending(std::future<Result> future) : future_(future.share()) {}

  bool Done() const {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  const Result& Wait() const { return future_.get(); }

 private:
  std::shared_future<Result> future_;
};

class Client {
 public:
  // Connects to the directory (one round trip to check it answers).
  // Unavailable when it cannot be reached.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Stores `value` under `key` (1 byte..1 GiB; key 1..1024 bytes). The object
  // is visible to every client once this returns OK.
  absl::Status Put(std::string_view key, std::span<const uint8_t> value,
                   const PutOptions& options = {});

  // Returns the object's bytes, checksum verified.
  absl::StatusOr<std::vector<uint8_t>> Get(std::string_view key);

  // Reads the object into `buffer` and returns its size. InvalidArgument when
  // the buffer is smaller than the object.
  absl::StatusOr<size_t> Get(std::string_view key, std::span<uint8_t> buffer);

  // Batches: one directory round trip for all keys and one request per node.
  // One result per key, in order. REQUIRES: keys.size() == values.size().
  std::vector<absl::Status> BatchPut(std::span<const std::string_view> keys,
                                     std::span<const std::span<const uint8_t>> values,
                                     const PutOptions& options = {});
  std::vector<absl::StatusOr<std::vector<uint8_t>>> BatchGet(
      std::span<const std::string_view> keys);
  // Into caller buffers. REQUIRES: keys.size() == buffers.size().
  std::vector<absl::StatusOr<size_t>> BatchGet(std::span<const std::string_view> keys,
                                               std::span<const std::span<uint8_t>> buffers);

  absl::StatusOr<bool> Exists(std::string_view key);
  absl::StatusOr<std::vector<bool>> BatchExists(std::span<const std::string_view> keys);

  // NotFound when the key is not in the pool.
  absl::Status Remove(std::string_view key);
  std::vector<absl::Status> BatchRemove(std::span<const std::string_view> keys);

  absl::StatusOr<ObjectInfo> Stat(std::string_view key);

  // Registers [data, data+size) with the RDMA device so gets into it and puts
  // from it move with no copy (other memory goes through a staging buffer).
  // Keep it registered while in use; registration pins the pages. A no-op
  // returning OK when the client uses TCP.
  absl::Status RegisterBuffer(void* data, size_t size);
  absl::Status UnregisterBuffer(void* data);

  // Pins a key (or, with prefix, every key starting with it, including keys
  // put later): pinned objects are never evicted. Pinning a key that does not
  // exist yet is allowed (it is pinned once put). Durable across directory
  // restarts.
  absl::Status Pin(std::string_view key_or_prefix, bool prefix = false);
  // Removes a pin made by Pin with the same arguments. NotFound when there
  // was no such pin.
  absl::Status Unpin(std::string_view key_or_prefix, bool prefix = false);

  // Moves every object off node `node_name` (its name or data address) onto
  // other nodes, node to node, while reads keep being served; returns OK when
  // the node holds nothing and is safe to power off. The node takes no new
  // objects until Undrain. ResourceExhausted when the others have no room;
  // NotFound for an unknown node.
  absl::Status Drain(std::string_view node_name);
  // Takes a drained (or draining) node back into placement.
  absl::Status Undrain(std::string_view node_name);

  // Evicts every unpinned, unleased object whose key starts with `prefix`
  // (empty: all) and returns how many were evicted.
  absl::StatusOr<uint64_t> Evict(std::string_view prefix);
  absl::StatusOr<PoolState> Status();

  // Up to `limit` (1..16384) committed keys starting with `prefix`, after
  // `start_after` in bytewise order. Costs the directory a scan of its map:
  // for tools, not for the data path.
  absl::StatusOr<ListResult> List(std::string_view prefix, size_t limit = 1000,
                                  std::string_view start_after = {});
  // Request counters and the last `history_seconds` (at most 600) seconds.
  absl::StatusOr<PoolMetrics> Metrics(int history_seconds = 60);

  // ---- Engine calls (client/prefix.cc, client/async.cc, client/owned_keys.cc)

  // How many leading keys of `keys` are in the pool and readable, asked in
  // one directory round trip (the engine's "how long is the cached prefix of
  // this chain of block keys"). Those keys are leased (not evicted, their
  // memory not reused, for the directory's --lease) and their locations
  // cached, so a get that follows reads straight from the nodes. Errors only
  // when the directory cannot answer or a key is invalid.
  absl::StatusOr<size_t> LookupPrefix(std::span<const std::string_view> keys);
  // LookupPrefix, then reads the present prefix into buffers[0..n) (one
  // request per node, no second directory round trip while the locations
  // are cached); returns n, how many leading keys were read. A key that turns
  // out unreadable after the lookup (its node lost) ends the prefix there.
  // Errors when a buffer is too small for its present key, or as
  // LookupPrefix. REQUIRES: buffers.size() == keys.size().
  absl::StatusOr<size_t> GetPrefix(std::span<const std::string_view> keys,
                                   std::span<const std::span<uint8_t>> buffers);

  // BatchGet, BatchPut and GetPrefix started in the background (each on a
  // thread of its own); any number may be in flight from one thread, e.g.
  // layer i+1's pages read while layer i computes. The keys are copied; the
  // buffers and values must stay valid, and values unchanged, until the
  // handle is done. REQUIRES: the Client outlives every handle.
  Pending<std::vector<absl::StatusOr<size_t>>> BatchGetAsync(
      std::span<const std::string_view> keys, std::span<const std::span<uint8_t>> buffers);
  Pending<std::vector<absl::Status>> BatchPutAsync(std::span<const std::string_view> keys,
                                                   std::span<const std::span<const uint8_t>> values,
                                                   const PutOptions& options = {});
  Pending<absl::StatusOr<size_t>> GetPrefixAsync(std::span<const std::string_view> keys,
                                                 std::span<const std::span<uint8_t>> buffers);

  // The batch calls with keys as strings and pages as byte vectors (no
  // parallel arrays of views and spans to keep alive). Get into buffers
  // leaves each buffer's size alone and returns the object's length.
  std::vector<absl::Status> BatchPut(const std::vector<std::string>& keys,
                                     const std::vector<std::vector<uint8_t>>& values,
                                     const PutOptions& options = {});
  std::vector<absl::StatusOr<std::vector<uint8_t>>> BatchGet(const std::vector<std::string>& keys);
  std::vector<absl::StatusOr<size_t>> BatchGet(const std::vector<std::string>& keys,
                                               std::vector<std::vector<uint8_t>>& buffers);
  absl::StatusOr<size_t> LookupPrefix(const std::vector<std::string>& keys);
  absl::StatusOr<size_t> GetPrefix(const std::vector<std::string>& keys,
                                   std::vector<std::vector<uint8_t>>& buffers);

  ClientStats stats() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_H_
