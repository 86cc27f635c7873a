// VerbsNodeIo: finding each node's RDMA paths, probing them, taking a failed
// one out of use and back (see verbs_node_io.h, "Paths").
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "verbs_paths_internal.h"

namespace unipool {
namespace {

// A node served over TCP because it had no RDMA path is asked again after
// this long: a cable may have been plugged in, or a port adopted.
constexpr absl::Duration kRediscoverTcpOnly = absl::Seconds(10);

std::string Describe(const RdmaPortInfo& port) {
  std::string subnet = SubnetText(port);
  return absl::StrFormat("%s (%s%s)", PortName(port), FormatGid(port.gid),
                         subnet.empty() ? "" : " on " + subnet);
}

}  // namespace

absl::StatusOr<std::unique_ptr<VerbsNodeIo>> VerbsNodeIo::Create(
    const VerbsOptions& options, const ConnectionOptions& connection_options, NodeIo* fallback) {
  std::unique_ptr<VerbsNodeIo> io(new VerbsNodeIo(options, connection_options, fallback));
  VerbsNodeIo* self = io.get();
  ASSIGN_OR_RETURN(io->ports_, RdmaPortSet::Create(options.devices, [self](RdmaDevice& device) {
                     return self->RegisterExisting(device);
                   }));
  return io;
}

VerbsNodeIo::VerbsNodeIo(VerbsOptions options, ConnectionOptions connection_options,
                         NodeIo* fallback)
    : options_(std::move(options)),
      connection_options_(std::move(connection_options)),
      fallback_(fallback) {}

VerbsNodeIo::~VerbsNodeIo() {
  absl::MutexLock lock(&mu_);
  peers_.clear();  // channels (QPs, MRs) go before the ports
  registered_.clear();
}

// Never asked yet, reached over TCP for a while, or planned with a GID
// that changed since.
bool VerbsNodeIo::NeedsDiscovery(const Peer& peer) {
  bool stale_tcp =
      !peer.tcp_reason.empty() && absl::Now() - peer.discovered_at > kRediscoverTcpOnly;
  bool stale_gid = std::any_of(peer.paths.begin(), peer.paths.end(), [](const auto& path) {
    return path->local->gid_generation() != path->local_generation;
  });
  return !peer.discovered || stale_tcp || peer.replan || stale_gid;
}

VerbsNodeIo::Peer& VerbsNodeIo::PeerFor(const std::string& address) {
  ports_->CheckOpened();  // GIDs and links where no event tells (once a second)
  Peer* peer;
  {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<Peer>& slot = peers_[address];
    if (slot == nullptr) {
      slot = std::make_unique<Peer>();
      slot->address = address;
    }
    peer = slot.get();
    if (!NeedsDiscovery(*peer)) return *peer;
  }
  absl::MutexLock discovering(&peer->discovery_mu);
  {
    absl::MutexLock lock(&mu_);
    if (!NeedsDiscovery(*peer)) return *peer;  // another thread just did it
  }
  Discover(*peer);
  return *peer;
}

absl::StatusOr<std::vector<RdmaPortInfo>> VerbsNodeIo::AskPorts(const std::string& address) {
  ASSIGN_OR_RETURN(auto control, Connection::Open(address, connection_options_));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateRdmaPorts(fbb));
  ASSIGN_OR_RETURN(ReceivedFrame reply, control->Call(fbb));
  const wire::RdmaPortsReply* r = reply.message()->body_as_RdmaPortsReply();
  if (r == nullptr) return absl::InternalError("unexpected reply to RdmaPorts");
  return RdmaPortsFromWire(r->ports());
}

void VerbsNodeIo::Discover(Peer& peer) {
  ports_->Refresh();
  std::vector<RdmaDevice*> locals = ports_->Opened();
  std::vector<RdmaPortInfo> local_infos;
  for (RdmaDevice* d : locals) local_infos.push_back(d->Info());
  std::vector<std::unique_ptr<Path>> paths;
  std::string reason;
  absl::StatusOr<std::vector<RdmaPortInfo>> remote = AskPorts(peer.address);
  auto new_path = [&](RdmaDevice* local, const RdmaPortInfo& port) {
    auto path = std::make_unique<Path>();
    path->address = peer.address;
    path->local = local;
    path->remote = port;
    path->local_generation = local->gid_generation();
    bool rc = options_.mode == RdmaMode::kRC && local->supports_rc() && port.rc;
    path->mode = rc ? RdmaMode::kRC : RdmaMode::kUC;
    return path;
  };
  if (remote.status().code() == absl::StatusCode::kInvalidArgument && !locals.empty()) {
    // A node from before RdmaPorts: one path, to its first active port.
    RdmaPortInfo unknown;
    unknown.device = "first-active";
    unknown.rc = true;
    paths.push_back(new_path(locals.front(), unknown));
    paths.back()->legacy = true;
  } else if (!remote.ok()) {
    reason =
        remote.status().code() == absl::StatusCode::kFailedPrecondition
            ? "the node serves no RDMA"
            : absl::StrFormat("its RDMA ports could not be asked (%s)", remote.status().message());
  } else {
    std::vector<PathCandidate> candidates = CandidatePaths(local_infos, *remote, false);
    std::vector<PathCandidate> chosen =
        ChoosePaths(std::span<const PathCandidate>(candidates), [&](const PathCandidate& c) {
          auto path = new_path(locals[c.local], (*remote)[c.remote]);
          if (!Probe(*path)) return false;
          paths.push_back(std::move(path));
          return true;
        });
    if (local_infos.empty() || std::none_of(local_infos.begin(), local_infos.end(),
                                            [](const RdmaPortInfo& p) { return p.active; })) {
      reason = "no local RDMA port is active";
    } else if (std::none_of(remote->begin(), remote->end(),
                            [](const RdmaPortInfo& p) { return p.active; })) {
      reason = absl::StrFormat("none of its %u RDMA ports is active", remote->size());
    } else if (chosen.empty()) {
      reason =
          absl::StrFormat("no local port reaches its ports (%u pairs probed)", candidates.size());
    }
  }
  for (const auto& path : paths) {
    LogInfo("RDMA path to %s: %s -> %s, %s", peer.address, Describe(path->local->Info()),
            path->legacy ? "its first active port" : Describe(path->remote),
            RdmaModeName(path->mode));
  }
  absl::MutexLock lock(&mu_);
  if (!reason.empty() && reason != peer.tcp_reason) {
    LogInfo("%s is reached over TCP: %s", peer.address, reason);
  }
  if (peer.replan) LogInfo("RDMA paths to %s planned again: a GID changed", peer.address);
  for (auto& old : peer.paths) {
    old->idle.clear();  // their queue pairs carry the old GIDs
    peer.retired.push_back(std::move(old));
  }
  peer.replan = false;
  peer.paths = std::move(paths);
  peer.tcp_reason = std::move(reason);
  peer.discovered = true;
  peer.discovered_at = absl::Now();
}

// A queue pair on the path's two ports, and an immediate from the node that
// arrives on it: the fabric joins them. The probe's channel is kept.
bool VerbsNodeIo::Probe(Path& path, absl::Status* why) {
  if (path.legacy) return true;  // such a node cannot be asked to probe
  absl::StatusOr<std::unique_ptr<Channel>> channel = Open(path);
  if (!channel.ok()) {
    if (why != nullptr) *why = channel.status();
    return false;
  }
  uint32_t imm = next_imm_.fetch_add(1);
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateRdmaProbe(fbb, imm));
  if (!ControlCall(**channel, fbb).ok()) return false;
  absl::Time deadline = absl::Now() + options_.probe_timeout;
  for (;;) {
    absl::StatusOr<uint32_t> got = (*channel)->qp->WaitImmediate(deadline - absl::Now());
    if (!got.ok()) return false;
    if (*got == imm) break;
  }
  Release(*std::move(channel));
  return true;
}

std::vector<VerbsNodeIo::Path*> VerbsNodeIo::UsablePaths(Peer& peer) {
  std::vector<Path*> up, retry;
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    for (const auto& path : peer.paths) {
      if (!path->backoff.down()) {
        up.push_back(path.get());
      } else if (path->backoff.MayRetry(now)) {
        path->backoff.Failed(now);  // one prober at a time; success resets it
        retry.push_back(path.get());
      }
    }
  }
  // A cable pulled since the last call: no transfer is posted on its port.
  for (Path* path : std::vector<Path*>(up)) {
    if (path->local->PortActive()) continue;
    PathFailed(peer, *path,
               absl::UnavailableError(absl::StrFormat("%s port %u is down", path->local->name(),
                                                      path->local->port())));
    std::erase(up, path);
  }
  for (Path* path : retry) {
    absl::Status why;
    if (!path->local->PortActive()) continue;
    if (!Probe(*path, &why)) {
      // The node refused the queue pair: no port with that GID (its address
      // changed) or none active. Ask its ports again on the next call.
      if (absl::IsFailedPrecondition(why)) {
        absl::MutexLock lock(&mu_);
        peer.replan = true;
      }
      continue;
    }
    absl::MutexLock lock(&mu_);
    path->backoff.Succeeded();
    LogInfo("RDMA path to %s over %s is back", peer.address, PortName(path->local->Info()));
    up.push_back(path);
  }
  return up;
}

std::string VerbsNodeIo::FallbackAddress(const Peer& peer) {
  std::vector<RdmaPortInfo> down;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& path : peer.paths) {
      if (path->backoff.down()) down.push_back(path->remote);
    }
  }
  return down.empty() ? peer.address : AddressesAvoiding(peer.address, down);
}

void VerbsNodeIo::PathFailed(Peer& peer, Path& path, const absl::Status& why) {
  path.errors.fetch_add(1);
  std::vector<std::unique_ptr<Channel>> dropped;
  absl::MutexLock lock(&mu_);
  bool was_up = !path.backoff.down();
  path.backoff.Failed(absl::Now());
  path.last_error = std::string(why.message());
  dropped.swap(path.idle);  // channels of a failed path are not trusted again
  if (was_up) {
    LogWarning("RDMA path to %s over %s failed, its transfers move on: %s", peer.address,
               PortName(path.local->Info()), why.message());
  }
}

absl::Status VerbsNodeIo::RegisterExisting(RdmaDevice& device) {
  absl::MutexLock lock(&mu_);
  for (auto& [start, buffer] : registered_) {
    ASSIGN_OR_RETURN(auto mr, device.Register(reinterpret_cast<void*>(start), buffer.size,
                                              /*remote=*/true));
    buffer.regions.emplace_back(&device, std::move(mr));
  }
  return absl::OkStatus();
}

std::vector<RdmaPathStats> VerbsNodeIo::PathStats() const {
  std::vector<RdmaPathStats> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [address, peer] : peers_) {
    for (const auto& path : peer->paths) {
      RdmaPathStats s;
      s.node_address = address;
      s.local_port = absl::StrFormat("%s:%u", path->local->name(), path->local->port());
      s.remote_port = PortName(path->remote);
      s.mode = RdmaModeName(path->mode);
      s.up = !path->backoff.down();
      s.bytes = path->bytes.load();
      s.requests = path->requests.load();
      s.errors = path->errors.load();
      s.retries = path->retries.load();
      s.last_error = path->last_error;
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<TcpFallbackStats> VerbsNodeIo::FallbackStats() const {
  std::vector<TcpFallbackStats> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [address, peer] : peers_) {
    if (!peer->tcp_reason.empty()) out.push_back({address, peer->tcp_reason});
  }
  return out;
}

}  // namespace unipool
