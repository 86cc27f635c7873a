#include "unipool/node/directory_link.h"

#include <algorithm>

#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {

DirectoryLink::DirectoryLink(DirectoryLinkOptions options, const Slab* slab,
                             const NodeDataCounters* counters)
    : options_(std::move(options)), slab_(slab), counters_(counters) {}

DirectoryLink::~DirectoryLink() { Stop(); }

void DirectoryLink::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DirectoryLink::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void DirectoryLink::Run() {
  absl::Duration backoff = options_.min_backoff;
  bool logged_failure = false;
  while (!stop_.HasBeenNotified()) {
    int before = registrations_.load();
    absl::Status s = Session();
    if (stop_.HasBeenNotified()) break;
    if (registrations_.load() != before) {
      backoff = options_.min_backoff;  // we were connected: start over quickly
      logged_failure = false;
    }
    if (!logged_failure) {
      LogWarning("directory %s unreachable (%s); retrying with backoff up to %s",
                 options_.directory_address, s.message(),
                 absl::FormatDuration(options_.max_backoff));
      logged_failure = true;
    }
    stop_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::Status DirectoryLink::Session() {
  ConnectionOptions conn_options;
  conn_options.peer_name = options_.name;
  conn_options.role = wire::Role::Node;
  conn_options.io_timeout = absl::Seconds(10);
  ASSIGN_OR_RETURN(auto conn, Connection::Open(options_.directory_address, conn_options));

  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(options_.name);
  auto host = fbb.CreateString(options_.host);
  auto address = fbb.CreateString(options_.data_address);
  auto transports = fbb.CreateVectorOfStrings(options_.transports);
  FinishMessage(fbb, wire::CreateRegisterNode(fbb, name, host, address, slab_->id(), slab_->size(),
                                              transports, slab_->huge_pages()));
  ASSIGN_OR_RETURN(ReceivedFrame frame, conn->Call(fbb));
  const auto* reply = frame.message()->body_as_RegisterNodeReply();
  if (reply == nullptr) return absl::InternalError("unexpected reply to RegisterNode");
  uint32_t node_id = reply->node_id();
  registrations_.fetch_add(1);
  LogInfo("registered with directory %s as node %u (%s)", options_.directory_address, node_id,
          reply->readmitted() ? "readmitted, objects kept" : "new slab");

  bool link_was_down = false;
  while (!stop_.WaitForNotificationWithTimeout(options_.heartbeat_interval)) {
    bool link_down = options_.rdma_link_down && options_.rdma_link_down();
    if (link_down != link_was_down) {
      LogWarning("RDMA link %s", link_down ? "down: telling the directory" : "up again");
      link_was_down = link_down;
    }
    flatbuffers::FlatBufferBuilder beat;
    FinishMessage(beat,
                  wire::CreateHeartbeat(beat, node_id, slab_->id(), counters_->bytes_read.load(),
                                        counters_->bytes_written.load(), counters_->reads.load(),
                                        counters_->writes.load(), link_down));
    ASSIGN_OR_RETURN(ReceivedFrame answer, conn->Call(beat));
    const auto* hb = answer.message()->body_as_HeartbeatReply();
    if (hb == nullptr || !hb->known()) {
      return absl::FailedPreconditionError(
          "directory no longer knows this node; registering again");
    }
  }
  return absl::OkStatus();
}

}  // namespace unipool
