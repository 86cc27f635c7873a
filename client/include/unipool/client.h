// unipool client SDK: put and get pages and tensors in a unipool pool.
//
//   auto client = unipool::Client::Connect({.directory = "10.0.0.1:7300"});
//   if (!client.ok()) ...
//   absl::Status s = (*client)->Put("llama3-70b/layer.12/attn.k#shard3", bytes);
//   absl::StatusOr<std::vector<uint8_t>> page = (*client)->Get("prefix:9f2c...");
//
// Administration (pins, drain, eviction, pool state, listings, metrics) is
// in unipool/admin.h. Error codes tell the caller what to do:
//   NotFound            the key is not in the pool, or every copy of it is on
//                       a node that is down (put it again, or recompute).
//   AlreadyExists       Put of an existing key without replace.
//   Unavailable         a node or the directory is unreachable: retry later,
//                       or recompute the page.
//   ResourceExhausted   the pool has no room: everything left is pinned or
//                       within other tenants' quotas, or room held by leases
//                       did not come within ClientOptions::pool_full_wait.
//   DataLoss            the bytes read do not match the stored checksum on
//                       every copy (never returned as data).
//   InvalidArgument     bad key (1..1024 bytes), empty or too large value,
//                       buffer too small, mismatched batch spans.
//   FailedPrecondition  ClientOptions ask for what this machine lacks.
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
#include "unipool/pool_types.h"
#include "unipool/view.h"

namespace unipool {

// The SDK's version, "MAJOR.MINOR.PATCH".
const char* SdkVersion();

// How page bytes use RDMA (ClientOptions::rdma).
enum class RdmaPolicy {
  kAuto,  // one-sided verbs where this machine has a device and the node
          // serves RDMA (RC where both ends can, else UC), TCP otherwise
  kRC,    // require a device and use RC; Connect fails without one
  kUC,    // require a device and use UC (testable on RC hardware)
  kOff,   // TCP (and same-host shared memory) only
};
// "auto", "rc", "uc" or "off" ("tcp" too); InvalidArgument otherwise.
absl::StatusOr<RdmaPolicy> ParseRdmaPolicy(std::string_view name);

// ClientOptions::copy_threads' bound on its default.
inline constexpr int kMaxCopyThreads = 4;
// The copy threads ClientOptions::copy_threads asks for: `asked` when 1 or
// more, else the cores of this machine up to kMaxCopyThreads.
int CopyThreadCount(int asked);

struct ClientOptions {
  // HOST:PORT of the directory. Default: a directory on this machine.
  // A replicated pool's directories (unipool-directory --etcd) are listed
  // "a:7300,b:7300": only the leader listens, so requests go to it, and
  // after a failover to the next leader, retried as across a restart.
  std::string directory = "127.0.0.1:7300";
  // Shown in server logs.
  std::string name = "client";
  // The pool's cluster key or a token (`unipoolctl keygen`, `unipoolctl token
  // create`), a file only its owner may read. Empty (default):
  // $UNIPOOL_KEY_FILE, else none (for pools that do not authenticate).
  std::string key_file;
  // The PEM certificate of the CA that signed the pool's servers, for pools
  // that speak TLS (servers started with --tls-cert): every connection is
  // then TLS 1.3 and each server's certificate is checked against it and
  // the host dialled. Empty (default): $UNIPOOL_TLS_CA, else plain TCP.
  // Shared memory and RDMA are not TCP and are not affected.
  std::string tls_ca;
  // The name every server's certificate must carry instead of the host
  // dialled (e.g. one certificate shared by the pool). Default: the host.
  std::string tls_name;
  // Default 3 s to establish a connection.
  absl::Duration connect_timeout = absl::Seconds(3);
  // Default 30 s of silence inside one request before it fails Unavailable.
  absl::Duration io_timeout = absl::Seconds(30);
  // A directory that cannot be reached (e.g. restarting) is asked again,
  // with backoff, for up to this long before a call fails Unavailable.
  // Default 5 s: a restarted directory serves again within a second or two.
  // With several directories listed, at least 15 s (a failover's lease).
  absl::Duration directory_retry = absl::Seconds(5);
  // A put that finds the pool full while the only room is held by read
  // leases, held memory or reservations that will end (after a directory
  // restart or failover every object counts as leased for a while; a burst
  // of reads does the same) waits for it, asking the directory again as
  // its answers suggest, for up to this long; then it fails
  // ResourceExhausted. A pool full of pinned objects, or a tenant's quota,
  // fails at once. Default 30 s: past a restart's grace (the lease, or with
  // a cluster key the directory's put timeout). Zero: never wait.
  absl::Duration pool_full_wait = absl::Seconds(30);
  // Idle connections kept per server. Default 8: one per concurrently
  // active thread is ideal.
  int max_idle_connections = 8;
  // Default kAuto.
  RdmaPolicy rdma = RdmaPolicy::kAuto;
  // RDMA devices to use (on a Mac: one per Thunderbolt cable); empty =
  // $UNIPOOL_RDMA_DEVICES, else every port of every device. Each node is
  // reached over every path the fabric offers to it (see docs/rdma.md).
  std::vector<std::string> rdma_devices;
  // One device: the same as rdma_devices = {rdma_device}.
  std::string rdma_device;
  // Same-host path: a node on this machine hands over its slab and pages are
  // copied straight between it and the caller's memory. Default true; each
  // node falls back when it does not share its slab. Not used with kRC/kUC.
  bool shm = true;
  // Threads that copy one same-host batch (BatchGet, BatchPut, GetPrefix of
  // 1 MiB or more) at once, the calling thread included: one page per thread
  // at a time, so a batch moves at up to the memory bandwidth rather than at
  // one core's copy rate. Default 0: as many as this machine has cores, at
  // most 4 (kMaxCopyThreads). 1: every copy on the calling thread (nothing
  // started). The helpers sleep between batches; with several threads
  // calling at once, one batch at a time uses them.
  int copy_threads = 0;
  // Bytes that this client's views (GetView, GetPrefixViews) may hold at
  // once; a view past it fails ResourceExhausted. Views keep pool memory
  // from reuse while they live, so this bounds what one client can pin.
  // Default 1 GiB.
  uint64_t max_view_bytes = 1ull << 30;
  // Locations of recently read objects, so a repeated get is one node read
  // with no directory round trip. Default 65536 entries; 0 disables.
  size_t location_cache_entries = 65536;
  // How long a cached location is used without asking the directory again.
  // Default zero: the directory's read lease (10 s by default), during which
  // it does not reuse the memory. Longer trusts the checksum alone to catch
  // reuse (never wrong bytes, but a removed key stays readable meanwhile).
  absl::Duration location_cache_ttl = absl::ZeroDuration();
  // Hold reservations for the next puts of a size put before, handed out
  // by each commit, so that such a put is one directory round trip instead
  // of two. Default true. They hold pool space (at most 1,024, 256 MiB and
  // an eighth of the pool) until used, given back when the client closes,
  // or expired (the directory's --put-timeout). False: every put reserves
  // its own space when it starts.
  bool prehanded_reservations = true;
  // Same host: fault the slab pages of those pre-handed reservations into
  // this process on a background thread as they arrive, so that the puts
  // that use them do not take the page faults (a first write into each 4 KiB
  // of a slab without huge pages faults). Costs that thread's CPU while the
  // client is otherwise idle. Default true.
  bool prefault_reservations = true;
};

struct PutOptions {
  // Overwrite an existing key. Default false: objects are immutable.
  bool replace = false;
  // Copies, each on a distinct node: 1..kMaxReplicas (and no more than the
  // live nodes). Default 1. N copies survive the loss of N-1 nodes.
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
  // "shm", "rdma-rc", "rdma-uc" or "tcp" (with shm, the one that served the
  // last node request).
  std::string transport = "tcp";
  uint64_t shm_requests = 0;         // node requests served through shared memory
  uint64_t rdma_requests = 0;        // ... over RDMA
  uint64_t tcp_requests = 0;         // ... over TCP
  uint64_t rdma_retries = 0;         // UC transfers sent again after a loss
  uint64_t location_cache_hits = 0;  // gets with no directory round trip
  uint64_t stale_cached_reads = 0;   // cached locations that failed and were looked up again
  uint64_t replica_fallbacks = 0;    // reads that failed on one copy, served by another
  uint64_t put_replacements = 0;     // puts placed again after a node failed them
  uint64_t directory_retries = 0;    // directory requests sent again (directory restarting)
  uint64_t pool_full_waits = 0;      // put items that waited for room in a full pool
  uint64_t pool_full_wait_ms = 0;    // ... and the time their batches waited, in total
  // Every RDMA path to the nodes contacted so far, and the nodes reached
  // over TCP only with the reason (RDMA clients only).
  std::vector<RdmaPathStats> rdma_paths;
  std::vector<TcpFallbackStats> tcp_fallbacks;
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
  // Unavailable when it cannot be reached; InvalidArgument for a bad address;
  // FailedPrecondition for kRC/kUC without an RDMA device.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Stores `value` (1 byte..kMaxObjectBytes) under `key`; visible to every
  // client once this returns OK. AlreadyExists without options.replace.
  absl::Status Put(std::string_view key, std::span<const uint8_t> value,
                   const PutOptions& options = {});

  // The object's bytes, checksum verified, from the nearest live copy.
  absl::StatusOr<std::vector<uint8_t>> Get(std::string_view key);
  // Reads the object into `buffer` and returns its size. InvalidArgument
  // when the buffer is smaller than the object.
  absl::StatusOr<size_t> Get(std::string_view key, std::span<uint8_t> buffer);

  // Batches: one directory round trip per 16384 keys and one request per
  // node. One result per key, in order; one bad key never fails the others.
  // Spans of different lengths fail every item InvalidArgument.
  std::vector<absl::Status> BatchPut(std::span<const std::string_view> keys,
                                     std::span<const std::span<const uint8_t>> values,
                                     const PutOptions& options = {});
  std::vector<absl::StatusOr<std::vector<uint8_t>>> BatchGet(
      std::span<const std::string_view> keys);
  std::vector<absl::StatusOr<size_t>> BatchGet(std::span<const std::string_view> keys,
                                               std::span<const std::span<uint8_t>> buffers);

  // True when the key is in the pool with a copy on a live node.
  absl::StatusOr<bool> Exists(std::string_view key);
  std::vector<absl::StatusOr<bool>> BatchExists(std::span<const std::string_view> keys);

  // NotFound when the key is not in the pool.
  absl::Status Remove(std::string_view key);
  std::vector<absl::Status> BatchRemove(std::span<const std::string_view> keys);

  // Registers [data, data+size) with the RDMA device so gets into it and puts
  // from it move with no copy; keep it registered while in use (it pins the
  // pages). OK and nothing done when the client does not use RDMA.
  absl::Status RegisterBuffer(void* data, size_t size);
  absl::Status UnregisterBuffer(void* data);

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

  // A read-only view of the key's bytes where a node on this machine keeps
  // them: no copy (unipool/view.h says what a view guarantees). NotFound as
  // Get; FailedPrecondition when no live copy is on a node of this machine
  // that shares its slab (get it instead); ResourceExhausted past
  // ClientOptions::max_view_bytes; DataLoss when the bytes do not match
  // their checksum.
  absl::StatusOr<PageView> GetView(std::string_view key);
  // Views of the present prefix of `keys` (one prefix lookup, as GetPrefix):
  // views[i] is keys[i]'s. The prefix ends at the first key that is absent
  // or cannot be viewed; errors only when the lookup fails or the first
  // present key cannot be viewed.
  absl::StatusOr<std::vector<PageView>> GetPrefixViews(std::span<const std::string_view> keys);
  // Bytes held by this client's views now.
  uint64_t view_bytes() const;

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
  friend class Admin;
  friend class ClientSeam;  // unit tests' NodeIo seam (not installed)
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_H_
