// Verbs objects for the transport: an opened device with its protection
// domain, a registered memory region, and a queue pair with its completion
// queues. Each is made by a factory and owns its verbs objects through
// handles (verbs_handles.h) declared in creation order, so they are released
// in reverse; errors name the device, the QP number and errno. The device
// and MR are in rdma.cc, queue-pair setup (state changes) in
// queue_pair_setup.cc, the data path (posting, polling) in queue_pair.cc.
//
// Thread safety: RdmaDevice and MemoryRegion may be shared. A device's GID
// may change (a new IPv4 address on a replugged link: RefreshGid) and its
// link state follows port events; everything else of both is immutable
// after creation. A QueuePair is used by one thread at a time.
#ifndef UNIPOOL_VERBS_RDMA_H_
#define UNIPOOL_VERBS_RDMA_H_

#include <infiniband/verbs.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/verbs/qp_info.h"
#include "unipool/verbs/verbs_handles.h"
#include "unipool/verbs/verbs_library.h"

namespace unipool {

enum class RdmaMode { kRC, kUC };
const char* RdmaModeName(RdmaMode mode);  // "rdma-rc" / "rdma-uc"

// Queue depth per QP in UC mode, as on Apple's Thunderbolt RDMA (reported
// capped near 32). RC on Linux NICs takes much more; 128 keeps a few MiB in
// flight at 64 KiB pieces.
inline constexpr int kUcQueueDepth = 32;
inline constexpr int kRcQueueDepth = 128;
static_assert(kUcQueueDepth <= 32, "macOS UC queues hold at most 32 work requests");

class MemoryRegion;

// One port of one device, by name: what --rdma-devices lists and watches.
struct RdmaPortName {
  std::string device;
  uint8_t port = 1;
  bool operator==(const RdmaPortName&) const = default;
};

// One opened port of a device, with its own context and protection domain
// (a device with two ports is opened twice).
class RdmaDevice {
 public:
  // Every port of the named devices (all devices when `names` is empty).
  // A named device that is not there (yet) is listed as its port 1, to be
  // watched. FailedPrecondition when there is no verbs library, or no
  // device at all and none named.
  static absl::StatusOr<std::vector<RdmaPortName>> ListPorts(const std::vector<std::string>& names);
  // The names of the machine's devices, without opening any.
  static absl::StatusOr<std::vector<std::string>> DeviceNames();
  // Opens one port, which must be ACTIVE with a usable GID, and allocates a
  // protection domain. `gid_index` < 0 picks one (ChooseGidIndex).
  // FailedPrecondition (not there, not active, no GID yet) or
  // ResourceExhausted (no PD) name the device and the reason.
  static absl::StatusOr<std::unique_ptr<RdmaDevice>> OpenPort(const RdmaPortName& port,
                                                              int gid_index = -1);
  // Opens `name`, or the first device with an active port when empty.
  static absl::StatusOr<std::unique_ptr<RdmaDevice>> Open(const std::string& name,
                                                          int gid_index = -1);
  RdmaDevice(const RdmaDevice&) = delete;
  RdmaDevice& operator=(const RdmaDevice&) = delete;

  // Registers [addr, addr+length) for local use and, with `remote`, for remote
  // reads and writes.
  absl::StatusOr<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t length,
                                                         bool remote) const;

  const VerbsApi& api() const { return *api_; }
  ibv_context* context() const { return context_.get(); }
  ibv_pd* pd() const { return pd_.get(); }
  const std::string& name() const { return name_; }
  uint8_t port() const { return port_; }
  // The GID in use and its index (they change together, in RefreshGid).
  int gid_index() const;
  Gid gid() const;
  // Counts the GID's changes: a path planned at another count is stale.
  uint64_t gid_generation() const { return gid_generation_.load(); }
  // Reads the port's GID table again and picks the GID as at open (the same
  // index when one was given); true when the GID changed. A queue pair made
  // before keeps the old GID and fails; new ones use the new GID.
  bool RefreshGid();
  // Whether the GID at the index in use differs from the one in use (one
  // query: the polling fallback where no GID_CHANGE event comes).
  bool GidStale() const;
  // What a port event said of the link (port_events.h): while the last
  // event said down, PortActive is false without asking the device.
  void NoteLinkEvent(bool active) { down_by_event_.store(!active); }
  // The polling fallback for that: a down noted by an event ends once the
  // port says ACTIVE, so a lost PORT_ACTIVE event cannot keep it down.
  void RecheckLink();
  uint16_t lid() const { return lid_; }
  ibv_mtu active_mtu() const { return active_mtu_; }
  uint32_t max_message() const { return max_message_; }
  int max_rd_atomic() const { return max_rd_atomic_; }
  // Whether the port is ACTIVE now: false at once after a port-down event,
  // else queried (events may not come: Apple's stack is not known to send
  // them).
  bool PortActive() const;
  // Whether reliable-connected QPs can be created (false on Apple's fabric).
  bool supports_rc() const { return supports_rc_; }
  uint32_t rate_mbps() const { return rate_mbps_; }
  // The port as peers and the directory see it (active queried now).
  RdmaPortInfo Info() const;

 private:
  RdmaDevice() = default;
  // Fills the port fields from `port` of `context` when it is ACTIVE with a
  // usable GID; false with the reason in `why` otherwise.
  bool UsePort(ibv_context* context, uint8_t port, int gid_index, std::string* why);
  absl::Status AllocateProtectionDomain();

  const VerbsApi* api_ = nullptr;
  ContextHandle context_;
  ProtectionDomainHandle pd_;
  std::string name_;
  uint8_t port_ = 1;
  int requested_gid_index_ = -1;  // as given to OpenPort
  mutable absl::Mutex gid_mu_;
  int gid_index_ ABSL_GUARDED_BY(gid_mu_) = 0;
  Gid gid_ ABSL_GUARDED_BY(gid_mu_){};
  uint8_t ipv4_prefix_ ABSL_GUARDED_BY(gid_mu_) = 0;
  std::atomic<uint64_t> gid_generation_{0};
  std::atomic<bool> down_by_event_{false};
  uint16_t lid_ = 0;
  ibv_mtu active_mtu_ = IBV_MTU_1024;
  uint32_t max_message_ = 1u << 30;
  int max_rd_atomic_ = 1;
  bool supports_rc_ = false;
  uint32_t rate_mbps_ = 0;
};

class MemoryRegion {
 public:
  MemoryRegion(const MemoryRegion&) = delete;
  MemoryRegion& operator=(const MemoryRegion&) = delete;

  uint8_t* addr() const { return static_cast<uint8_t*>(mr_->addr); }
  size_t length() const { return mr_->length; }
  uint32_t lkey() const { return mr_->lkey; }
  uint32_t rkey() const { return mr_->rkey; }
  bool Contains(const void* p, size_t n) const {
    auto a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(mr_->addr);
    return a >= base && n <= mr_->length && a - base <= mr_->length - n;
  }

 private:
  friend class RdmaDevice;
  explicit MemoryRegion(MemoryRegionHandle mr) : mr_(std::move(mr)) {}
  MemoryRegionHandle mr_;
};

// One local piece of memory and where it goes (or comes from) remotely.
struct RdmaTransfer {
  uint8_t* local = nullptr;
  uint32_t lkey = 0;  // of the local memory's region
  uint64_t remote_addr = 0;
  uint32_t rkey = 0;  // of the remote memory's region
  uint64_t length = 0;
};

class QueuePair {
 public:
  // Creates a QP of `mode` (and its CQs) and moves it to INIT.
  static absl::StatusOr<std::unique_ptr<QueuePair>> Create(const RdmaDevice& device, RdmaMode mode);
  QueuePair(const QueuePair&) = delete;
  QueuePair& operator=(const QueuePair&) = delete;

  // This end, to send to the peer.
  const QpEndpoint& local() const { return local_; }
  RdmaMode mode() const { return mode_; }
  int depth() const { return depth_; }
  // INIT -> RTR -> RTS towards `remote`, at the smaller of both MTUs.
  absl::Status Connect(const QpEndpoint& remote) {
    if (absl::Status s = ToReadyToReceive(remote); !s.ok()) return s;
    return ToReadyToSend();
  }

  // Runs the transfers as RDMA READs (remote -> local) or WRITEs (local ->
  // remote), each cut to the device's message size, up to depth() work
  // requests in flight, and waits for every completion. With `imm`, the
  // last piece of the last transfer is a WRITE_WITH_IMM carrying it.
  // Unavailable on a completion error (the QP is then unusable);
  // DeadlineExceeded when completions do not come within `timeout`.
  absl::Status Read(std::span<const RdmaTransfer> transfers, absl::Duration timeout);
  absl::Status Write(std::span<const RdmaTransfer> transfers, absl::Duration timeout,
                     const uint32_t* imm = nullptr);

  // Sends an empty WRITE_WITH_IMM carrying `imm` and waits for its
  // completion (a path probe: the peer's WaitImmediate sees it).
  absl::Status SendImmediate(uint32_t imm, absl::Duration timeout);
  // Posts receives for incoming WRITE_WITH_IMM (they carry no data here).
  absl::Status PostReceives(int count);
  // Waits for one incoming immediate; DeadlineExceeded after `timeout`.
  absl::StatusOr<uint32_t> WaitImmediate(absl::Duration timeout);

  uint32_t qp_num() const { return qp_->qp_num; }
  bool broken() const { return broken_; }
  // A socket to the same peer (its control connection). While waiting for
  // completions, a hang-up on it ends the wait at once with Unavailable: a
  // dead peer must not cost the full transfer timeout (an RC READ to a
  // vanished QP may never complete on some devices). -1 = none.
  void WatchPeer(int fd) { peer_fd_ = fd; }
  // Pieces never exceed this: the device's message size, lowered to the
  // peer's when that is smaller.
  void LimitMessageSize(uint32_t peer_max) { max_message_ = std::min(max_message_, peer_max); }

 private:
  QueuePair(const RdmaDevice& device, RdmaMode mode) : device_(device), mode_(mode) {}
  // The state changes (queue_pair_setup.cc), each with its attribute mask.
  absl::Status ToInit();
  absl::Status ToReadyToReceive(const QpEndpoint& remote);
  absl::Status ToReadyToSend();
  // Posts what fits of `work` from `next` on, as one chain (queue_pair.cc).
  struct Work;
  absl::Status PostChain(ibv_wr_opcode opcode, const std::vector<Work>& work, size_t& next,
                         int room, const uint32_t* imm);
  absl::Status Run(ibv_wr_opcode opcode, std::span<const RdmaTransfer> transfers,
                   absl::Duration timeout, const uint32_t* imm);
  absl::Status Error(const std::string& what, int err) const;
  // True when the watched peer socket has hung up.
  bool PeerGone() const;

  const RdmaDevice& device_;
  const RdmaMode mode_;
  int depth_ = 0;
  CompletionQueueHandle cq_;  // send completions
  CompletionQueueHandle recv_cq_;
  QueuePairHandle qp_;  // after its CQs: destroyed first
  QpEndpoint local_;
  uint32_t max_message_ = 0;
  int peer_fd_ = -1;
  bool broken_ = false;
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_RDMA_H_
