#include "unipool/node/directory_link.h"

#include <poll.h>

#include <algorithm>

#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/rdma_port.h"
#include "unipool/common/status_macros.h"
#include "unipool/verbs/path_plan.h"
#include "unipool/verbs/port_watchdog.h"

namespace unipool {
namespace {

// While waiting to beat, how often the node looks whether the directory
// closed the connection, so that a restarted directory sees it again within
// about this long of listening.
constexpr absl::Duration kClosedCheckInterval = absl::Milliseconds(50);

}  // namespace

DirectoryLink::DirectoryLink(DirectoryLinkOptions options, const Slab* slab,
                             const NodeDataCounters* counters, NodeIdentity* state)
    : options_(std::move(options)), slab_(slab), counters_(counters), state_(state) {}

DirectoryLink::~DirectoryLink() { Stop(); }

void DirectoryLink::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DirectoryLink::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void DirectoryLink::Run() {
  // Refusals need the operator (another pool, a name taken); the rest is the
  // network or a restarting directory.
  auto refused = [](const absl::Status& s) {
    return absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s) ||
           absl::IsPermissionDenied(s) || absl::IsResourceExhausted(s);
  };
  absl::Duration backoff = options_.min_backoff;
  absl::Time lost_at = absl::InfinitePast();  // when the last session ended
  bool logged_failure = false;
  std::string logged_refusal;
  while (!stop_.HasBeenNotified()) {
    int before = registrations_.load();
    absl::Status s = Session();
    if (stop_.HasBeenNotified()) break;
    if (registrations_.load() != before) {
      // We were registered: the directory is probably restarting. Dial
      // again at once, then often.
      backoff = absl::ZeroDuration();
      lost_at = absl::Now();
      logged_failure = false;
      logged_refusal.clear();
    }
    bool fast = absl::Now() - lost_at < options_.fast_retry_window;
    absl::Duration cap = fast ? options_.fast_retry_backoff : options_.max_backoff;
    if (refused(s)) {
      // Once per refusal (it needs the operator), even after other failures.
      if (s.message() != logged_refusal) {
        LogError("directory %s refused this node: %s (retrying with backoff up to %s)",
                 options_.directory_address, s.message(), absl::FormatDuration(cap));
        logged_refusal = std::string(s.message());
      }
      logged_failure = true;
    } else if (!logged_failure) {
      LogWarning("directory %s unreachable (%s); retrying with backoff up to %s",
                 options_.directory_address, s.message(), absl::FormatDuration(cap));
      logged_failure = true;
    }
    stop_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(std::max(backoff * 2, options_.min_backoff), cap);
  }
}

absl::Status DirectoryLink::Session() {
  ConnectionOptions conn_options;
  conn_options.peer_name = options_.name;
  conn_options.role = wire::Role::Node;
  conn_options.io_timeout = absl::Seconds(10);
  // Not over a pulled cable, where the directory has other addresses.
  std::vector<RdmaPortInfo> down = CurrentPorts();
  std::erase_if(down, [](const RdmaPortInfo& p) { return p.active; });
  ASSIGN_OR_RETURN(auto conn, Connection::Open(AddressesAvoiding(options_.directory_address, down),
                                               conn_options));

  bool readmitted = false;
  ASSIGN_OR_RETURN(uint32_t node_id, Register(*conn, readmitted));
  if (!readmitted && options_.on_new_slab) options_.on_new_slab(node_id);

  PortWatchdog watchdog;  // stops (its thread joined) before `conn` closes
  while (!WaitForBeat(conn->fd())) {
    flatbuffers::FlatBufferBuilder beat;
    std::vector<RdmaPortInfo> ports = CurrentPorts();
    // A beat over a pulled cable would wait out the I/O timeout, and the
    // directory could take the node for lost: dial another address now.
    std::string others = AddressesOffDownPorts(conn->address(), options_.directory_address, ports);
    if (!others.empty()) {
      LogWarning("directory link over %s: its cable is down, dialling %s", conn->address(), others);
      return absl::UnavailableError("the directory link's cable went down");
    }
    bool changed = ports != sent_ports_;
    if (changed) LogPortChanges(sent_ports_, ports);
    auto port_vec = changed ? RdmaPortsToWire(beat, ports) : 0;
    auto flash = options_.flash_counts ? EncodeFlashCounts(beat, options_.flash_counts()) : 0;
    FinishMessage(beat,
                  wire::CreateHeartbeat(beat, node_id, slab_->id(), counters_->bytes_read.load(),
                                        counters_->bytes_written.load(), counters_->reads.load(),
                                        counters_->writes.load(),
                                        /*rdma_link_down=*/false, port_vec, flash));
    if (changed) sent_ports_ = std::move(ports);
    // A cable pulled under a beat in flight: ended at once, not by the I/O
    // timeout (the port's down event comes up to a second after the link).
    PortWatchdog::Guard guard = watchdog.Watch(
        [&] {
          return AddressesOffDownPorts(conn->address(), options_.directory_address, CurrentPorts())
              .empty();
        },
        conn->fd());
    ASSIGN_OR_RETURN(ReceivedFrame answer, conn->Call(beat));
    const auto* hb = answer.message()->body_as_HeartbeatReply();
    if (hb == nullptr || !hb->known()) {
      return absl::FailedPreconditionError(
          "directory no longer knows this node; registering again");
    }
  }
  return absl::OkStatus();
}

std::vector<RdmaPortInfo> DirectoryLink::CurrentPorts() const {
  return options_.rdma_ports ? options_.rdma_ports() : std::vector<RdmaPortInfo>{};
}

// One line per port whose state changed: operators follow cables here.
void DirectoryLink::LogPortChanges(const std::vector<RdmaPortInfo>& before,
                                   const std::vector<RdmaPortInfo>& after) {
  for (const RdmaPortInfo& port : after) {
    auto old = std::find_if(before.begin(), before.end(), [&](const RdmaPortInfo& p) {
      return p.device == port.device && p.port == port.port;
    });
    if (old == before.end()) {
      LogInfo("RDMA port %s adopted (%s): telling the directory", PortName(port),
              port.active ? "active" : "down");
    } else if (old->active != port.active) {
      LogWarning("RDMA port %s %s: telling the directory", PortName(port),
                 port.active ? "active again" : "down (clients move its transfers)");
    } else if (old->gid != port.gid) {
      LogInfo("RDMA port %s has a new GID %s (was %s): telling the directory", PortName(port),
              FormatGid(port.gid), FormatGid(old->gid));
    }
  }
}

absl::StatusOr<uint32_t> DirectoryLink::Register(Connection& conn, bool& readmitted) {
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options_.name);
  auto host = fbb.CreateString(options_.host);
  auto address = fbb.CreateString(options_.data_address);
  auto transports = fbb.CreateVectorOfStrings(options_.transports);
  auto identity = fbb.CreateVector(reinterpret_cast<const uint8_t*>(state_->identity().data()),
                                   state_->identity().size());
  auto pool = fbb.CreateString(state_->pool_id());
  sent_ports_ = CurrentPorts();
  auto ports = RdmaPortsToWire(fbb, sent_ports_);
  uint64_t flash_capacity = options_.flash_counts ? options_.flash_counts().capacity : 0;
  FinishMessage(fbb, wire::CreateRegisterNode(fbb, name, host, address, slab_->id(), slab_->size(),
                                              transports, slab_->huge_pages(), identity, pool,
                                              ports, flash_capacity));
  ASSIGN_OR_RETURN(ReceivedFrame frame, conn.Call(fbb));
  const auto* reply = frame.message()->body_as_RegisterNodeReply();
  if (reply == nullptr) return absl::InternalError("unexpected reply to RegisterNode");
  std::string pool_id(AsStringView(reply->pool_id()));
  if (pool_id != state_->pool_id()) {
    bool sane = !pool_id.empty() && pool_id.size() <= 64 &&
                std::all_of(pool_id.begin(), pool_id.end(), [](char c) { return isxdigit(c); });
    if (!sane) return absl::InternalError("the directory's pool id is malformed");
    RETURN_IF_ERROR(state_->RememberPool(pool_id));
    LogInfo("joined pool %s (remembered in %s)", pool_id, state_->dir());
  }
  registrations_.fetch_add(1);
  readmitted = reply->readmitted();
  LogInfo("registered with directory %s as node %u (%s)", options_.directory_address,
          reply->node_id(), reply->readmitted() ? "readmitted, objects kept" : "new slab");
  return reply->node_id();
}

bool DirectoryLink::WaitForBeat(int fd) {
  absl::Time beat = absl::Now() + options_.heartbeat_interval;
  while (
      !stop_.WaitForNotificationWithTimeout(std::min(kClosedCheckInterval, beat - absl::Now()))) {
    if (absl::Now() >= beat) return false;
    // Between requests the directory sends nothing: readable means it closed
    // the connection (it stopped): beat now, which fails and reconnects.
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) != 0) return false;
  }
  return true;
}

}  // namespace unipool
