#include "unipool/directory/node_prober.h"

#include "absl/strings/str_format.h"
#include "unipool/common/connection.h"
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
  ASSIGN_OR_RETURN(auto conn, Connection::Open(address, options));
  flatbuffers::FlatBufferBuilder fbb;
  wire::Range first_byte(0, 1);
  auto ranges = fbb.CreateVectorOfStructs(&first_byte, 1);
  FinishMessage(fbb, wire::CreateChecksum(fbb, ranges));
  ASSIGN_OR_RETURN(ReceivedFrame reply, conn->Call(fbb));
  if (reply.message()->body_as_ChecksumReply() == nullptr) {
    return absl::UnavailableError(absl::StrFormat("node %s sent an unexpected reply", address));
  }
  return absl::OkStatus();
}

void NodeProber::Start() {
  thread_ = std::thread([this] { Run(); });
}

void NodeProber::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void NodeProber::Run() {
  while (!stop_.HasBeenNotified()) {
    for (const Directory::ProbePlan& plan : directory_->TakeProbes(kIdleWait)) {
      directory_->FinishProbe(plan, ProbeNode(plan.address));
    }
  }
}

}  // namespace unipool
