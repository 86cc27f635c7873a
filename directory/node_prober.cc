#include "unipool/directory/node_prober.h"

#include "absl/strings/str_format.h"
#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// How often the prober looks for due probes when nothing wakes it (a probe
// made due by a heartbeat; Stop).
constexpr absl::Duration kIdleWait = absl::Milliseconds(200);

}  // namespace

absl::Status ProbeNode(const std::string& address) {
  ConnectionOptions options;
  options.peer_name = "directory-probe";
  options.role = wire::Role::Admin;
  options.connect_timeout = kProbeConnectTimeout;
  options.io_timeout = kProbeAnswerTimeout;
  auto conn = Connection::Open(address, options);
  // A node that refused the connection for one of its caps answered: it is
  // alive, only full (the cluster key is never capped once it has proved
  // itself, so this is a flood of handshakes pushing ours out).
  if (absl::IsResourceExhausted(conn.status())) return absl::OkStatus();
  if (!conn.ok()) return conn.status();
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range first_byte(0, 1);
  auto ranges = fbb.CreateVectorOfStructs(&first_byte, 1);
  FinishMessage(fbb, wire::CreateChecksum(fbb, ranges));
  ASSIGN_OR_RETURN(ReceivedFrame reply, (*conn)->Call(fbb));
  if (reply.message()->body_as_ChecksumReply() == nullptr) {
    return absl::UnavailableError(absl::StrFormat("node %s sent an unexpected reply", address));
  }
  return absl::OkStatus();
}

void NodeProber::Start() {
  thread_ = std::thread([this] { Run(); });
  checker_ = std::thread([this] { RunChecks(); });
}

void NodeProber::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (checker_.joinable()) checker_.join();
}

void NodeProber::CheckReports(std::span<const NodeId> ids) {
  absl::MutexLock lock(&checks_mu_);
  for (NodeId id : ids) {
    if (reported_.size() >= kMaxNodes) break;  // (ids of nodes that exist are fewer)
    reported_.insert(id);
  }
}

void NodeProber::RunChecks() {
  while (!stop_.HasBeenNotified()) {
    std::vector<NodeId> ids;
    {
      absl::MutexLock lock(&checks_mu_);
      auto reported = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(checks_mu_) { return !reported_.empty(); };
      checks_mu_.AwaitWithTimeout(absl::Condition(&reported), kIdleWait);
      ids.assign(reported_.begin(), reported_.end());
      reported_.clear();
    }
    if (ids.empty()) continue;
    std::vector<NodeId> silent = Check(ids);
    directory_->ReportUnreachable(silent);  // suspect: the prober's own probe decides
  }
}

std::vector<NodeId> NodeProber::Check(const std::vector<NodeId>& ids) {
  absl::flat_hash_set<NodeId> wanted(ids.begin(), ids.end());
  std::vector<NodeId> silent;
  absl::Time now = absl::Now();
  for (const NodeState& node : directory_->Status().nodes) {
    if (!wanted.contains(node.node_id) || !node.up) continue;  // not up: nothing to hide
    auto last = answered_.find(node.node_id);
    if (last != answered_.end() && now - last->second < kReportCheckCooldown) continue;
    if (ProbeNode(node.data_address).ok()) {
      answered_[node.node_id] = absl::Now();
      LogInfo("node %d %s: reported unreachable, answered the directory's probe: stays up",
              node.node_id, node.name);
    } else {
      silent.push_back(node.node_id);
    }
  }
  return silent;
}

void NodeProber::Run() {
  while (!stop_.HasBeenNotified()) {
    for (const Directory::ProbePlan& plan : directory_->TakeProbes(kIdleWait)) {
      directory_->FinishProbe(plan, ProbeNode(plan.address));
    }
  }
}

}  // namespace unipool
