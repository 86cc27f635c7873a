// NodeIo over RDMA verbs. Per node, a pool of channels: a TCP control
// connection (the same data port, which sets the QP up and serves UC gets)
// plus a queue pair, a staging buffer and the node's slab address and rkey.
//   RC: get = RDMA READ from the slab, put = RDMA WRITE; the node's CPU is
//       not involved.
//   UC: put = RDMA WRITE, then the node verifies each range's checksum
//       (RdmaVerify) and what did not arrive whole is written again; get =
//       RdmaReadTo: the node writes into our memory, WITH_IMM last; we verify
//       the checksum and ask again for what was lost. Both bounded. Both
//       requests carry each op's capability, which a node with a key checks
//       (a refusal comes back as PermissionDenied).
// Memory registered with RegisterBuffer moves with no copy; anything else
// goes through the channel's registered staging buffer.
// Nodes that serve no RDMA are remembered and served by the fallback NodeIo.
//
// Thread safety: thread-safe (a channel is used by one thread at a time).
#ifndef UNIPOOL_VERBS_VERBS_NODE_IO_H_
#define UNIPOOL_VERBS_VERBS_NODE_IO_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/connection.h"
#include "unipool/transport/node_io.h"
#include "unipool/verbs/rdma.h"

namespace unipool {

struct VerbsOptions {
  // Device name; empty = the first device with an active port.
  std::string device;
  // kRC unless forced to UC (or the device only has UC).
  RdmaMode mode = RdmaMode::kRC;
  // Staging buffer per channel for unregistered memory. Default 16 MiB: a
  // few large pages per round trip without pinning much memory.
  size_t staging_bytes = 16u << 20;
  // UC: attempts per transfer before giving up with DataLoss. Default 4.
  int uc_max_attempts = 4;
  // Longest wait for one batch of completions. Default 30 s (a TCG VM with
  // Soft-RoCE moves ~50 MB/s; real fabrics are 100x faster).
  absl::Duration transfer_timeout = absl::Seconds(30);
  // UC get: how long to wait for the closing immediate after the node said
  // it sent everything. Default 2 s.
  absl::Duration immediate_timeout = absl::Seconds(2);
};

// The keys of a registered memory region: lkey to post from or into it
// here, rkey for a peer to write into it.
struct RegionKeys {
  uint32_t lkey = 0;
  uint32_t rkey = 0;
};

class VerbsNodeIo : public NodeIo {
 public:
  // Opens the device. FailedPrecondition when there is none (the caller
  // then uses TCP). `fallback` serves nodes without RDMA; it must outlive
  // this object.
  static absl::StatusOr<std::unique_ptr<VerbsNodeIo>> Create(
      const VerbsOptions& options, const ConnectionOptions& connection_options, NodeIo* fallback);
  ~VerbsNodeIo() override;

  absl::Status Write(const std::string& node_address, std::span<const WriteOp> ops) override;
  absl::Status Read(const std::string& node_address, std::span<const ReadOp> ops) override;
  std::string_view name() const override { return RdmaModeName(mode_); }

  // Zero-copy for [data, data+size): registered once, used by every
  // transfer that lies inside it. AlreadyExists if it overlaps a registered
  // buffer.
  absl::Status RegisterBuffer(void* data, size_t size);
  absl::Status UnregisterBuffer(void* data);

  uint64_t rdma_requests() const { return rdma_requests_.load(); }
  uint64_t fallback_requests() const { return fallback_requests_.load(); }
  uint64_t retries() const { return retries_.load(); }

 private:
  struct Channel;
  VerbsNodeIo(VerbsOptions options, ConnectionOptions connection_options, NodeIo* fallback,
              std::unique_ptr<RdmaDevice> device, RdmaMode mode);

  // A channel to the node, or nullptr when the node serves no RDMA.
  absl::StatusOr<std::unique_ptr<Channel>> Acquire(const std::string& address);
  absl::StatusOr<std::unique_ptr<Channel>> Open(const std::string& address);
  void Release(std::unique_ptr<Channel> channel);
  bool ServedByFallback(const std::string& address);
  // The keys of the registered buffer that contains [data, data+size), if any.
  std::optional<RegionKeys> RegisteredKeys(const void* data, size_t size);
  struct Segment;
  struct LocalPiece;
  // Moves `segments` through registered memory in rounds (verbs_node_io.cc).
  absl::Status Staged(Channel& channel, std::span<const Segment> segments, bool to_node,
                      const std::function<absl::Status(std::span<const LocalPiece>)>& run);
  static std::vector<RdmaTransfer> SlabTransfers(std::span<const LocalPiece> pieces,
                                                 uint64_t slab_addr, uint32_t slab_rkey);

  // Runs `over_rdma` on a channel to the node (retrying a stuck RC transfer
  // once on a new channel), or `over_fallback` when the node serves no RDMA.
  absl::Status Transfer(const std::string& address,
                        absl::FunctionRef<absl::Status(Channel&)> over_rdma,
                        absl::FunctionRef<absl::Status()> over_fallback);
  absl::Status WriteOn(Channel& channel, std::span<const WriteOp> ops);
  absl::Status WriteVerifiedOn(Channel& channel, std::span<const WriteOp> ops);
  absl::Status ReadOn(Channel& channel, std::span<const ReadOp> ops);
  absl::Status VerifyOnNode(Channel& channel, std::span<const WriteOp> ops,
                            std::vector<bool>* lost);
  absl::Status ReadToOnce(Channel& channel, std::span<const ReadOp> ops);

  const VerbsOptions options_;
  const ConnectionOptions connection_options_;
  NodeIo* const fallback_;
  const std::unique_ptr<RdmaDevice> device_;
  const RdmaMode mode_;
  std::atomic<uint64_t> rdma_requests_{0}, fallback_requests_{0}, retries_{0};
  std::atomic<uint32_t> next_imm_{1};

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<Channel>>> idle_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> tcp_only_ ABSL_GUARDED_BY(mu_);
  // Registered user buffers by start address.
  std::map<uintptr_t, std::unique_ptr<MemoryRegion>> registered_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_VERBS_NODE_IO_H_
