// VerbsNodeIo's private state, shared by its three source files:
// verbs_paths.cc (finding and probing paths), verbs_spread.cc (spreading a
// call over paths, failover) and verbs_node_io.cc (channels, moving bytes).
#ifndef UNIPOOL_VERBS_VERBS_PATHS_INTERNAL_H_
#define UNIPOOL_VERBS_VERBS_PATHS_INTERNAL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "unipool/platform/memory.h"
#include "unipool/verbs/verbs_node_io.h"

namespace unipool {

// Members are destroyed in reverse order: the QP first (so no work request
// can still be writing into staging), then the staging MR, then its memory.
struct VerbsNodeIo::Channel {
  Path* path = nullptr;  // owned by the peer, which outlives its channels
  std::unique_ptr<Connection> control;
  platform::AnonymousPages staging;  // mapped, not malloc'd: macOS registers only that
  std::unique_ptr<MemoryRegion> staging_mr;
  std::unique_ptr<QueuePair> qp;
  uint64_t slab_addr = 0;
  uint32_t slab_rkey = 0;

  bool broken() const { return control->broken() || qp->broken(); }
};

// One local port joined to one of the node's ports.
struct VerbsNodeIo::Path {
  std::string address;          // the node's
  RdmaDevice* local = nullptr;  // owned by the port set
  RdmaPortInfo remote;
  bool legacy = false;  // a node before RdmaPorts: connect to its first port
  RdmaMode mode = RdmaMode::kUC;
  uint64_t local_generation = 0;  // local->gid_generation() when planned
  // Guarded by VerbsNodeIo::mu_.
  PathBackoff backoff;
  std::string last_error;
  std::vector<std::unique_ptr<Channel>> idle;
  // Counters, read without the lock.
  std::atomic<uint64_t> queued_bytes{0}, bytes{0}, requests{0}, errors{0}, retries{0};
};

struct VerbsNodeIo::Peer {
  std::string address;
  bool discovered = false;
  absl::Time discovered_at = absl::InfinitePast();
  std::string tcp_reason;  // non-empty: no RDMA path, served by TCP
  std::vector<std::unique_ptr<Path>> paths;
  // Guarded by VerbsNodeIo::mu_: a GID changed, plan the paths again.
  bool replan = false;
  // Paths of earlier plans: a call may still hold one, so they live on
  // (without channels). Only a GID change adds to them.
  std::vector<std::unique_ptr<Path>> retired;
  // One discovery at a time per node (others wait, then use its result).
  absl::Mutex discovery_mu;
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_VERBS_PATHS_INTERNAL_H_
