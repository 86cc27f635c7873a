#include "unipool/directory/revocation_worker.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "node_connection.h"
#include "unipool/common/capability.h"
#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// Puts per round: their capabilities go out in one request per node.
constexpr size_t kPlansPerRound = 1024;
// How long the thread sleeps with nothing queued before it checks for stop.
constexpr absl::Duration kIdleWait = absl::Milliseconds(200);

}  // namespace

RevocationWorker::RevocationWorker(Directory* directory) : directory_(directory) {}

RevocationWorker::~RevocationWorker() { Stop(); }

void RevocationWorker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RevocationWorker::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void RevocationWorker::Run() {
  while (!stop_.HasBeenNotified()) {
    std::vector<RevokePlan> plans = directory_->revocations().Take(kPlansPerRound, kIdleWait);
    if (plans.empty()) continue;
    std::vector<bool> ended = Revoke(plans);
    directory_->FinishRevocations(plans, ended);
  }
}

std::vector<bool> RevocationWorker::Revoke(std::span<const RevokePlan> plans) {
  // Each node's capabilities, and which plans they belong to.
  std::map<std::string, std::vector<std::pair<size_t, Capability>>> by_node;
  for (size_t i = 0; i < plans.size(); ++i) {
    for (const RevokePlan::OnNode& on : plans[i].on_nodes) {
      by_node[on.address].emplace_back(i, on.capability);
    }
  }
  std::vector<bool> ended(plans.size(), true);
  for (const auto& [address, all] : by_node) {
    for (size_t first = 0; first < all.size(); first += kMaxBatchItems) {
      size_t n = std::min(kMaxBatchItems, all.size() - first);
      std::vector<Capability> capabilities;
      capabilities.reserve(n);
      for (size_t j = first; j < first + n; ++j) capabilities.push_back(all[j].second);
      if (absl::Status s = CallNode(address, capabilities); !s.ok()) {
        LogWarning(
            "could not end %u write capabilities at node %s (their memory is held until "
            "they expire): %s",
            n, address, s.ToString());
        for (size_t j = first; j < first + n; ++j) ended[all[j].first] = false;
      }
    }
  }
  return ended;
}

absl::Status RevocationWorker::CallNode(const std::string& address,
                                        std::span<const Capability> capabilities) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<wire::Capability> encoded;
  encoded.reserve(capabilities.size());
  for (const Capability& c : capabilities) encoded.push_back(EncodeCapability(c));
  FinishMessage(fbb, wire::CreateRevokeWrites(fbb, fbb.CreateVectorOfStructs(encoded)));
  std::unique_ptr<Connection>& conn = connections_[address];
  bool reused = conn != nullptr;
  if (!reused) {
    ASSIGN_OR_RETURN(conn, Connection::Open(address, NodeConnectionOptions()));
  }
  absl::StatusOr<ReceivedFrame> answer = conn->Call(fbb);
  if (!answer.ok() && reused && conn->broken()) {
    // The node may have closed an idle connection (it restarted): once more
    // on a new one.
    ASSIGN_OR_RETURN(conn, Connection::Open(address, NodeConnectionOptions()));
    answer = conn->Call(fbb);
  }
  if (!answer.ok() && conn->broken()) conn.reset();
  return answer.status();
}

}  // namespace unipool
