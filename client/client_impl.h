// The SDK's insides, shared by its files: Client::Impl holds the connections,
// the transports, the location cache and the counters; each job lives in its
// own file:
//   client.cc          Connect, the transports, the public Client calls
//   put_path.cc        BatchPut: reserve, write every copy
//   put_commit.cc      ... the stock of pre-handed reservations, commit or abort
//   get_path.cc        lookups and GetMany: cache, nearest copy, fallback, retry
//   key_requests.cc    Exists and Remove
//   prefix.cc          LookupPrefix and GetPrefix (one prefix Lookup)
//   views.cc           GetView and GetPrefixViews (zero-copy, view_registry.h)
//   async.cc           the asynchronous batches
//   owned_keys.cc      batch overloads taking std::string keys and byte vectors
//   admin.cc           the Admin calls (unipool/admin.h)
//   node_io_seam.cc    a Client over a NodeIo of the caller's (unit tests)
//
// Thread safety: thread-safe; the counters are relaxed atomics and the cache
// has its own lock.
#ifndef UNIPOOL_CLIENT_CLIENT_IMPL_H_
#define UNIPOOL_CLIENT_CLIENT_IMPL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client_security.h"
#include "location_cache.h"
#include "reservation_stock.h"
#include "unipool/client.h"
#include "unipool/common/frame.h"
#include "unipool/common/protocol.h"
#include "unipool/pool_types.h"
#include "unipool/shm/shm_node_io.h"
#include "unipool/tcp/tcp_node_io.h"
#include "unipool/transport/connection_pool.h"
#include "unipool/transport/node_io.h"
#include "unipool/verbs/verbs_node_io.h"
#include "view_registry.h"

namespace unipool {

class PoolFullWait;  // pool_full_wait.h

class Client::Impl {
 public:
  // `security`: the key or token proven to every server, and the CA its
  // certificates are checked against (each null: none).
  // `host`: the machine this client runs on, whose copies are read first;
  // empty = this machine's host name.
  Impl(const ClientOptions& options, ClientSecurity security, std::string host = "");
  // Gives the pre-handed reservations it holds back (best effort: they
  // would expire anyway).
  ~Impl();

  // Chooses how page bytes move: RDMA per ClientOptions::rdma, then the
  // same-host path in front of it (ClientOptions::shm).
  absl::Status SetUpTransports();
  // Sends every node's page bytes through `node_io` instead (the test seam,
  // unipool/client/node_io_seam.h). REQUIRES: `node_io` outlives this.
  void UseNodeIo(NodeIo* node_io) { node_io_ = node_io; }

  absl::Status RegisterBuffer(void* data, size_t size);
  absl::Status UnregisterBuffer(void* data);

  // One request to the directory; Unavailable names the directory. A
  // directory that cannot be reached (restarting) is asked again with
  // backoff for up to ClientOptions::directory_retry; `resent` (if given)
  // says whether the request was sent more than once.
  absl::StatusOr<ReceivedFrame> CallDirectory(const flatbuffers::FlatBufferBuilder& request,
                                              bool* resent = nullptr);
  // Connect found the directory: from now on an unreachable directory is
  // restarting, and CallDirectory asks again (before, it fails at once).
  void RetryDirectoryFromNowOn() { retry_directory_.store(true, std::memory_order_relaxed); }
  // Finishes a directory request carrying `body`, with the nodes this client
  // could not reach since its last request (the directory probes them).
  template <typename T>
  void FinishDirectoryRequest(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<T> body) {
    std::vector<uint32_t> unreachable = TakeUnreachable();
    FinishMessage(fbb, body, unreachable);
  }
  // Remembers node `node_id` for the next directory request when `status`
  // says it could not be reached (Unavailable, DeadlineExceeded).
  void NoteUnreachable(uint32_t node_id, const absl::Status& status);
  std::vector<uint32_t> TakeUnreachable();
  absl::Status WriteToNode(const std::string& address, std::span<const WriteOp> ops);
  absl::Status ReadFromNode(const std::string& address, std::span<const ReadOp> ops);
  // flash_read.cc: pages a lookup found on a node's flash only, read by that
  // node from its flash (FlashRead); all or none. The caller verifies them.
  struct FlashReadOp {
    std::string_view key;
    uint64_t version = 0;
    uint64_t checksum = 0;
    std::span<uint8_t> into;  // exactly the page's length
    const Capability* capability = nullptr;
  };
  absl::Status ReadFromFlash(const std::string& address, std::span<const FlashReadOp> ops);
  static bool ServedFromFlash(const ObjectInfo& info);
  void MaybeReportFabric();

  // put_path.cc
  std::vector<absl::Status> BatchPut(std::span<const std::string_view> keys,
                                     std::span<const std::span<const uint8_t>> values,
                                     const PutOptions& options);

  // get_path.cc
  // Looks the keys up (leasing them) and caches what it finds.
  std::vector<absl::StatusOr<ObjectInfo>> LookupMany(std::span<const std::string_view> keys);
  // Where a get puts an object of `length` bytes: a span of exactly that
  // size, or an error for the item (buffer too small).
  using BufferFor =
      std::function<absl::StatusOr<std::span<uint8_t>>(size_t index, uint64_t length)>;
  // Gets every key into its buffer and returns each object's length: from a
  // cached location when there is one, else after a lookup; from the nearest
  // live copy, falling back to the others; bytes are returned only when they
  // match the object's checksum. A stale cached location, or a read that
  // fails everywhere, is retried after a fresh lookup.
  // With `known` (one location per key, from a lookup just made), those are
  // used instead of the cache on the first attempt.
  std::vector<absl::StatusOr<uint64_t>> GetMany(std::span<const std::string_view> keys,
                                                const BufferFor& buffer_for,
                                                const std::vector<ObjectInfo>* known = nullptr);
  // BufferFor for caller buffers: buffers[i], InvalidArgument naming the key
  // when it is too small.
  static BufferFor IntoBuffers(std::span<const std::string_view> keys,
                               std::span<const std::span<uint8_t>> buffers);
  // Remembers a looked-up location for as long as it can be trusted (the
  // lease, or ClientOptions::location_cache_ttl); `sent` is when the lookup
  // was sent.
  void CacheLocation(std::string_view key, const ObjectInfo& info, absl::Time sent,
                     uint32_t lease_ms);

  // prefix.cc
  // The locations of the leading readable keys, in one directory round trip
  // per kMaxBatchItems keys (a prefix Lookup), leased and cached.
  absl::StatusOr<std::vector<ObjectInfo>> LookupPrefix(std::span<const std::string_view> keys);

  // views.cc
  // A view of `info`'s copy on this machine, checksum verified, counted
  // against ClientOptions::max_view_bytes and renewed while it lives.
  absl::StatusOr<std::shared_ptr<ViewHold>> MakeView(std::string_view key, const ObjectInfo& info);
  uint64_t view_bytes() const { return views_->held_bytes(); }

  // key_requests.cc
  std::vector<absl::StatusOr<bool>> ExistsMany(std::span<const std::string_view> keys);
  std::vector<absl::Status> RemoveMany(std::span<const std::string_view> keys);

  // admin.cc
  absl::StatusOr<PoolState> FetchPoolState();
  absl::Status PinRequest(std::string_view key, bool prefix, bool unpin);
  // Polls until the node is empty (or, with undrain, asks once).
  absl::Status DrainRequest(std::string_view node, bool undrain);

  ClientStats stats() const;

 private:
  // put_path.cc: the steps of one chunk of a BatchPut.
  struct PutChunk;
  // The valid items of [begin, end); each invalid one's error goes straight
  // into its result.
  std::vector<size_t> PutItems(PutChunk& chunk, size_t begin, size_t end);
  // Reserves, writes and commits `items`, placing again what a node failed,
  // up to kPutAttempts times; items the pool has no room for yet (a retry
  // hint) are left in chunk.waiting.
  void PutAttempts(PutChunk& chunk, std::vector<size_t> items);
  // Counts and logs (one line) a chunk of `batch` items that waited.
  void ReportPoolFullWait(const PutChunk& chunk, size_t waited_items, const PoolFullWait& wait,
                          size_t batch);
  // Asks PutStart for `items`; what it reserved joins the chunk.
  void Reserve(PutChunk& chunk, const std::vector<size_t>& items);
  // put_commit.cc: gives each of `items` a pre-handed reservation of its
  // shape when the stock has one; returns the others.
  std::vector<size_t> TakeFromStock(PutChunk& chunk, const std::vector<size_t>& items);
  struct CopyWrite;
  struct NodeWrite;
  // Writes every reserved copy, one request per node (and size limit), the
  // nodes' requests side by side, and sets each item's checksum; a node
  // that could not be reached is reported with the next request.
  void WriteCopies(PutChunk& chunk);
  // One node request of WriteCopies; touches only its own CopyWrites.
  void WriteToOneNode(PutChunk& chunk, std::vector<CopyWrite>& writes, const NodeWrite& request,
                      bool hash_while_writing);
  // Records how one copy's write went into its item (failed node, checksum).
  void SettleWrite(PutChunk& chunk, const CopyWrite& w);
  // Commits the items with every copy written and aborts the others, which
  // it returns to be placed again; on the `last_attempt` an item with a copy
  // written commits without the copies that failed.
  std::vector<size_t> CommitOrAbort(PutChunk& chunk, bool last_attempt);
  // Commits chunk.reserved[j] for each j in `written`, asking for the next
  // puts' reservations; returns the pre-handed items the directory no
  // longer knew (to put again).
  std::vector<size_t> Commit(PutChunk& chunk, const std::vector<size_t>& written);
  flatbuffers::Offset<wire::PutCommit> BuildCommit(flatbuffers::FlatBufferBuilder& fbb,
                                                   const PutChunk& chunk,
                                                   const std::vector<size_t>& written);
  // Adds the reply's pre-handed reservations to the stock (`sent`: when the
  // commit was sent).
  void StockReservations(const wire::PutCommitReply& reply, absl::Time sent);
  // Releases reservations (best effort: they also expire).
  void Abort(const std::vector<uint64_t>& put_ids);
  // After a commit was sent twice (directory restart), NotFound may mean the
  // first send committed it: OK when the key's version is the one its
  // reservation announced (`version`; the put id is random, not a version).
  absl::Status CommittedAfterResend(std::string_view key, uint64_t version, absl::Status not_found);

  // get_path.cc: the steps of a GetMany attempt.
  struct GetState;
  struct ReadItem;
  struct NodeRead;
  // Where each pending item lives: the cache (when allowed), else Lookup.
  void Locate(GetState& state, bool use_cache);
  // The located items' buffers and live copies; an item whose copies are all
  // on down nodes is NotFound, or retried when the location was cached.
  std::vector<ReadItem> PrepareReads(GetState& state, std::vector<size_t>& retry);
  // Reads each item from its current copy and verifies it; an item that
  // fails moves to its next copy until one works or none is left.
  void ReadCopies(std::span<const std::string_view> keys, std::vector<ReadItem>& reads);
  void ReadFromOneNode(std::span<const std::string_view> keys, std::vector<ReadItem>& reads,
                       const NodeRead& request);
  // Results and counters of the reads; failed items join `retry` and leave
  // the cache.
  void Settle(GetState& state, const std::vector<ReadItem>& reads, std::vector<size_t>& retry);
  // One prefix Lookup of at most kMaxBatchItems keys: appends the leading
  // readable keys' locations to `found` and returns how many there were.
  absl::StatusOr<size_t> LookupPrefixChunk(std::span<const std::string_view> keys,
                                           std::vector<ObjectInfo>& found);
  // Live copies, same host first, then the others in the directory's order.
  std::vector<const CopyLocation*> ReadOrder(const ObjectInfo& info) const;

  // admin.cc: one Drain request; the reply points into `frame`.
  absl::StatusOr<const wire::DrainReply*> DrainOnce(std::string_view node, bool undrain,
                                                    ReceivedFrame& frame);

  const ClientOptions options_;
  ConnectionPool pool_;
  TcpNodeIo tcp_io_;
  std::unique_ptr<VerbsNodeIo> verbs_io_;  // null: no RDMA
  std::unique_ptr<ShmNodeIo> shm_io_;      // null: no same-host path
  NodeIo* node_io_;                        // the one in use
  const std::string host_;                 // this machine, to prefer copies on it
  LocationCache<ObjectInfo> cache_;
  // Random, chosen at construction: the directory binds pre-handed
  // reservations to it.
  const uint64_t client_id_;
  ReservationStock stock_;
  std::atomic<uint64_t> puts_{0}, gets_{0}, bytes_put_{0}, bytes_got_{0};
  std::atomic<uint64_t> directory_requests_{0}, node_requests_{0}, checksum_failures_{0};
  std::atomic<uint64_t> cache_hits_{0}, stale_cached_reads_{0}, replica_fallbacks_{0};
  std::atomic<uint64_t> put_replacements_{0}, directory_retries_{0};
  std::atomic<uint64_t> pool_full_waits_{0}, pool_full_wait_ms_{0};
  std::atomic<int64_t> next_fabric_report_ms_{0};  // unix ms; see MaybeReportFabric
  std::atomic<bool> retry_directory_{false};
  absl::Mutex unreachable_mu_;
  std::vector<uint32_t> unreachable_ ABSL_GUARDED_BY(unreachable_mu_);
  // Last: its renewals call LookupMany, so it goes before everything else.
  std::unique_ptr<ViewRegistry> views_;
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_CLIENT_IMPL_H_
