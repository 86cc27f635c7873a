// The SDK's insides, shared by its files: Client::Impl holds the connections,
// the transports, the location cache and the counters; each job lives in its
// own file:
//   client.cc          Connect, the transports, the public Client calls
//   put_path.cc        BatchPut: reserve, write every copy, commit or abort
//   get_path.cc        lookups and GetMany: cache, nearest copy, fallback, retry
//   key_requests.cc    Exists and Remove
//   admin.cc           the Admin calls (unipool/admin.h)
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
#include "location_cache.h"
#include "unipool/client.h"
#include "unipool/common/frame.h"
#include "unipool/pool_types.h"
#include "unipool/shm/shm_node_io.h"
#include "unipool/tcp/tcp_node_io.h"
#include "unipool/transport/connection_pool.h"
#include "unipool/transport/node_io.h"
#include "unipool/verbs/verbs_node_io.h"

namespace unipool {

class Client::Impl {
 public:
  explicit Impl(const ClientOptions& options);

  // Chooses how page bytes move: RDMA per ClientOptions::rdma, then the
  // same-host path in front of it (ClientOptions::shm).
  absl::Status SetUpTransports();

  absl::Status RegisterBuffer(void* data, size_t size);
  absl::Status UnregisterBuffer(void* data);

  // One request to the directory; Unavailable names the directory.
  absl::StatusOr<ReceivedFrame> CallDirectory(const flatbuffers::FlatBufferBuilder& request);
  absl::Status WriteToNode(const std::string& address, std::span<const WriteOp> ops);
  absl::Status ReadFromNode(const std::string& address, std::span<const ReadOp> ops);

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
  std::vector<absl::StatusOr<uint64_t>> GetMany(std::span<const std::string_view> keys,
                                                const BufferFor& buffer_for);

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
  // Reads each item from its current copy (cursor) and verifies it; items
  // that fail move to their next copy until one works or none is left.
  // `order[i]` lists item i's live copies, nearest first.
  std::vector<absl::Status> ReadCopies(std::span<const std::string_view> keys,
                                       const std::vector<size_t>& items,
                                       const std::vector<std::vector<const CopyLocation*>>& order,
                                       const std::vector<std::span<uint8_t>>& buffers,
                                       const std::vector<ObjectInfo>& objects);
  // One Drain request; the reply points into `frame`.
  absl::StatusOr<const wire::DrainReply*> DrainOnce(std::string_view node, bool undrain,
                                                    ReceivedFrame& frame);
  // Live copies, same host first, then the others in the directory's order.
  std::vector<const CopyLocation*> ReadOrder(const ObjectInfo& info) const;

  const ClientOptions options_;
  ConnectionPool pool_;
  TcpNodeIo tcp_io_;
  std::unique_ptr<VerbsNodeIo> verbs_io_;  // null: no RDMA
  std::unique_ptr<ShmNodeIo> shm_io_;      // null: no same-host path
  NodeIo* node_io_;                        // the one in use
  const std::string host_;                 // this machine, to prefer copies on it
  LocationCache<ObjectInfo> cache_;
  std::atomic<uint64_t> puts_{0}, gets_{0}, bytes_put_{0}, bytes_got_{0};
  std::atomic<uint64_t> directory_requests_{0}, node_requests_{0}, checksum_failures_{0};
  std::atomic<uint64_t> cache_hits_{0}, stale_cached_reads_{0}, replica_fallbacks_{0};
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_CLIENT_IMPL_H_
