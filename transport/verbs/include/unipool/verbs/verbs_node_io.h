// NodeIo over RDMA verbs, over every path the fabric offers to each node.
//
// Paths. The client opens every local RDMA port (or those named). For each
// node it asks which ports the node serves on (RdmaPorts), pairs them with
// its own (same IPv4 subnet first, then the rest) and probes each pair: a
// queue pair whose node end sends an immediate that arrives here. A pair
// that answers is a path (on a Thunderbolt mesh: the cable joining the two
// Macs); each port is in at most one path. A node with no path is served
// by the fallback NodeIo (TCP), said once in the log with the reason.
//
// Per path, a pool of channels: a TCP control connection to the node (which
// sets the QP up and serves UC gets) plus a queue pair on the path's ports,
// a staging buffer and the node's slab address and rkey there.
//   RC: get = RDMA READ from the slab, put = RDMA WRITE; the node's CPU is
//       not involved.
//   UC: put = RDMA WRITE, then the node verifies each range's checksum
//       (RdmaVerify) and what did not arrive whole is written again; get =
//       RdmaReadTo: the node writes into our memory, WITH_IMM last; we verify
//       the checksum and ask again for what was lost. Both bounded. Both
//       requests carry each op's capability, which a node with a key checks
//       (a refusal comes back as PermissionDenied).
// A path's mode is RC when both ends offer it and RC was asked for, else UC.
//
// Several paths to one node share a batch, weighted by link rate and what
// each has queued; a single large write (or RC read) is cut over them.
// A path that fails (port down, QP in error, completion error, silence past
// the transfer timeout, UC losses past the retries) is taken out of use,
// and its share moves within the same call to another path, else to TCP.
// It is probed again after a backoff (1 s doubling to 10 s) once its local
// port is active. A control request in flight when the port goes down is
// ended at once (PortWatchdog); while a path is out of use, its node's TCP
// fallback skips the addresses on that path's cable (AddressesAvoiding).
// A node's paths are planned again when a GID at either end changed (a
// replugged link with a new address): a local port's GID moved on since the
// plan, or the node no longer has the GID a path's probe asks for.
//
// Memory registered with RegisterBuffer moves with no copy; anything else
// goes through the channel's registered staging buffer.
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
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/connection.h"
#include "unipool/transport/node_io.h"
#include "unipool/verbs/path_plan.h"
#include "unipool/verbs/port_set.h"
#include "unipool/verbs/port_watchdog.h"
#include "unipool/verbs/rdma.h"

namespace unipool {

struct VerbsOptions {
  // Local devices to use; empty = every port of every device.
  std::vector<std::string> devices;
  // kRC unless forced to UC (paths whose ends lack RC use UC anyway).
  RdmaMode mode = RdmaMode::kRC;
  // Staging buffer per channel for unregistered memory. Default 16 MiB: a
  // few large pages per round trip without pinning much memory.
  size_t staging_bytes = 16u << 20;
  // UC: attempts per transfer before giving up with DataLoss. Default 4.
  int uc_max_attempts = 4;
  // Longest wait for one batch of completions. Default 30 s (a TCG VM with
  // Soft-RoCE moves ~50 MB/s; real fabrics are 100x faster). A pulled local
  // cable or a peer that closes its connection ends the wait at once.
  absl::Duration transfer_timeout = absl::Seconds(30);
  // UC get: how long to wait for the closing immediate after the node said
  // it sent everything. Default 2 s.
  absl::Duration immediate_timeout = absl::Seconds(2);
  // How long a path probe waits for the node's immediate. Default 1 s.
  absl::Duration probe_timeout = absl::Seconds(1);
  // A single write (or RC read) of at least this many bytes is cut over
  // every path to its node. Default 4 MiB.
  uint64_t split_min_bytes = 4u << 20;
};

// The keys of a registered memory region: lkey to post from or into it
// here, rkey for a peer to write into it.
struct RegionKeys {
  uint32_t lkey = 0;
  uint32_t rkey = 0;
};

class VerbsNodeIo : public NodeIo {
 public:
  // Opens the local ports. FailedPrecondition when this machine has no
  // verbs library or RDMA device (the caller then uses TCP); ports that are
  // down are watched. `fallback` serves nodes without an RDMA path; it must
  // outlive this object.
  static absl::StatusOr<std::unique_ptr<VerbsNodeIo>> Create(
      const VerbsOptions& options, const ConnectionOptions& connection_options, NodeIo* fallback);
  ~VerbsNodeIo() override;

  absl::Status Write(const std::string& node_address, std::span<const WriteOp> ops) override;
  absl::Status Read(const std::string& node_address, std::span<const ReadOp> ops) override;
  std::string_view name() const override { return RdmaModeName(options_.mode); }

  // Zero-copy for [data, data+size): registered once on every local port,
  // used by every transfer that lies inside it. AlreadyExists if it overlaps
  // a registered buffer.
  absl::Status RegisterBuffer(void* data, size_t size);
  absl::Status UnregisterBuffer(void* data);

  uint64_t rdma_requests() const { return rdma_requests_.load(); }
  uint64_t fallback_requests() const { return fallback_requests_.load(); }
  uint64_t retries() const { return retries_.load(); }
  // Every path to every node contacted so far, and the nodes served by TCP.
  std::vector<RdmaPathStats> PathStats() const;
  std::vector<TcpFallbackStats> FallbackStats() const;

 private:
  struct Channel;
  struct Path;
  struct Peer;
  struct Segment;
  struct LocalPiece;
  struct Share;
  VerbsNodeIo(VerbsOptions options, ConnectionOptions connection_options, NodeIo* fallback);

  // --- paths (verbs_paths.cc) ---
  // The node's entry, its paths found on first use (and again for a TCP-only
  // node after a while: a cable may have been plugged in).
  Peer& PeerFor(const std::string& address);
  bool NeedsDiscovery(const Peer& peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Discover(Peer& peer);
  absl::StatusOr<std::vector<RdmaPortInfo>> AskPorts(const std::string& address);
  // Paths usable now: up, or down with their backoff over and local port
  // active (probed again here).
  std::vector<Path*> UsablePaths(Peer& peer);
  // Whether `path` answers a probe; `why` (when given) gets the failure.
  bool Probe(Path& path, absl::Status* why = nullptr);
  void PathFailed(Peer& peer, Path& path, const absl::Status& why);
  void FallBackToTcp(Peer& peer, std::string reason);
  // Where the TCP fallback goes: the node's addresses, without those on the
  // cables of its paths now out of use (AddressesAvoiding).
  std::string FallbackAddress(const Peer& peer);
  // Registers the buffers registered so far on a port just opened.
  absl::Status RegisterExisting(RdmaDevice& device);

  // --- spreading and failover (verbs_spread.cc) ---
  // Runs `run(channel, items)` for the items spread over the node's usable
  // paths, moving a failed path's share to the others, then to `fallback`.
  using RunOnChannel = std::function<absl::Status(Channel&, std::span<const size_t>)>;
  using RunFallback = std::function<absl::Status(std::span<const size_t>)>;
  absl::Status Spread(Peer& peer, const std::vector<Path*>& paths,
                      std::span<const uint64_t> item_bytes, const RunOnChannel& run,
                      const RunFallback& fallback);
  static std::vector<PathLoad> Loads(const std::vector<Path*>& paths);
  absl::Status RunShare(Peer& peer, std::vector<Path*> paths, Path& first,
                        std::span<const size_t> items, std::span<const uint64_t> item_bytes,
                        const RunOnChannel& run, const RunFallback& fallback);
  absl::Status RunOnPath(Path& path, std::span<const size_t> items, uint64_t bytes,
                         const RunOnChannel& run);

  // --- channels and bytes (verbs_node_io.cc) ---
  absl::StatusOr<std::unique_ptr<Channel>> Acquire(Path& path);
  absl::StatusOr<std::unique_ptr<Channel>> Open(Path& path);
  // A request on the channel's control connection, ended at once (as
  // Unavailable) if the path's local port goes down meanwhile.
  absl::StatusOr<ReceivedFrame> ControlCall(Channel& channel,
                                            const flatbuffers::FlatBufferBuilder& request);
  void Release(std::unique_ptr<Channel> channel);
  // The keys on `device` of the registered buffer holding [data, data+size).
  std::optional<RegionKeys> RegisteredKeys(const RdmaDevice& device, const void* data, size_t size);
  absl::Status Staged(Channel& channel, std::span<const Segment> segments, bool to_node,
                      const std::function<absl::Status(std::span<const LocalPiece>)>& run);
  static std::vector<RdmaTransfer> SlabTransfers(std::span<const LocalPiece> pieces,
                                                 uint64_t slab_addr, uint32_t slab_rkey);
  absl::Status WriteOn(Channel& channel, std::span<const WriteOp> ops);
  absl::Status WriteVerifiedOn(Channel& channel, std::span<const WriteOp> ops);
  absl::Status ReadOn(Channel& channel, std::span<const ReadOp> ops);
  absl::Status VerifyOnNode(Channel& channel, std::span<const WriteOp> ops,
                            std::vector<bool>* lost);
  absl::Status ReadToOnce(Channel& channel, std::span<const ReadOp> ops);
  void CountRetry(Path& path);

  const VerbsOptions options_;
  const ConnectionOptions connection_options_;
  NodeIo* const fallback_;
  PortWatchdog watchdog_;
  std::atomic<uint64_t> rdma_requests_{0}, fallback_requests_{0}, retries_{0};
  std::atomic<uint32_t> next_imm_{1};
  // Declared first, destroyed last: channels and regions go before ports.
  std::unique_ptr<RdmaPortSet> ports_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
  // Registered user buffers by start address: one region per local port.
  struct Registered {
    size_t size = 0;
    std::vector<std::pair<const RdmaDevice*, std::unique_ptr<MemoryRegion>>> regions;
  };
  std::map<uintptr_t, Registered> registered_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_VERBS_NODE_IO_H_
