#include "unipool/verbs/port_events.h"

#include <fcntl.h>
#include <poll.h>

#include <algorithm>

#include "unipool/common/log.h"
#include "unipool/verbs/rdma.h"

namespace unipool {
namespace {

// How long the loop's thread waits for an event before it looks whether it
// should stop: the most a port set's destruction waits for it.
constexpr absl::Duration kStopCheck = absl::Milliseconds(250);

// A device context's event channel (its async_fd, made non-blocking so a
// read never outlives the poll that found it readable).
class VerbsEventSource : public PortEventSource {
 public:
  explicit VerbsEventSource(const RdmaDevice& device) : device_(device) {
    int fd = device.context()->async_fd;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }

  std::optional<PortEvent> Next(absl::Duration timeout) override {
    pollfd p{device_.context()->async_fd, POLLIN, 0};
    int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
    if (poll(&p, 1, ms) <= 0) return std::nullopt;
    const VerbsApi& api = device_.api();
    ibv_async_event event{};
    if (api.get_async_event(device_.context(), &event) != 0) return std::nullopt;
    std::string what = api.event_type_str != nullptr ? api.event_type_str(event.event_type)
                                                     : std::to_string(event.event_type);
    PortEvent out = ToPortEvent(event, std::move(what));
    api.ack_async_event(&event);  // every event read is acknowledged, or teardown hangs
    return out;
  }

 private:
  const RdmaDevice& device_;
};

}  // namespace

PortEvent ToPortEvent(const ibv_async_event& event, std::string what) {
  PortEvent out;
  out.what = std::move(what);
  switch (event.event_type) {
    case IBV_EVENT_PORT_ERR:
      out.kind = PortEventKind::kPortDown;
      out.port = static_cast<uint8_t>(event.element.port_num);
      break;
    case IBV_EVENT_PORT_ACTIVE:
      out.kind = PortEventKind::kPortActive;
      out.port = static_cast<uint8_t>(event.element.port_num);
      break;
    case IBV_EVENT_GID_CHANGE:
      out.kind = PortEventKind::kGidChange;
      out.port = static_cast<uint8_t>(event.element.port_num);
      break;
    case IBV_EVENT_QP_FATAL:
    case IBV_EVENT_QP_REQ_ERR:
    case IBV_EVENT_QP_ACCESS_ERR:
      out.kind = PortEventKind::kQueuePairFatal;
      out.qp_num = event.element.qp != nullptr ? event.element.qp->qp_num : 0;
      break;
    case IBV_EVENT_DEVICE_FATAL:
      out.kind = PortEventKind::kDeviceFatal;
      break;
    default:
      out.kind = PortEventKind::kOther;
      break;
  }
  return out;
}

std::unique_ptr<PortEventSource> DeviceEventSource(const RdmaDevice& device) {
  const VerbsApi& api = device.api();
  if (api.get_async_event == nullptr || api.ack_async_event == nullptr) return nullptr;
  return std::make_unique<VerbsEventSource>(device);
}

void DispatchPortEvent(const PortEvent& event, const std::string& port_name, uint8_t port,
                       const PortEventActions& actions) {
  bool ours = event.port == port;
  switch (event.kind) {
    case PortEventKind::kPortDown:
      if (!ours) return;
      actions.link(false);
      LogWarning("RDMA port %s: event %s: link down, its paths stop at once", port_name,
                 event.what);
      return;
    case PortEventKind::kPortActive: {
      if (!ours) return;
      actions.link(true);
      std::string gid = actions.refresh_gid();
      LogInfo("RDMA port %s: event %s: link up%s", port_name, event.what,
              gid.empty() ? "" : ", with a new GID " + gid);
      return;
    }
    case PortEventKind::kGidChange: {
      if (!ours) return;
      std::string gid = actions.refresh_gid();
      LogInfo("RDMA port %s: event %s: %s", port_name, event.what,
              gid.empty() ? "GID in use unchanged"
                          : "new GID " + gid + ", paths over the port planned again");
      return;
    }
    case PortEventKind::kQueuePairFatal:
      LogWarning("RDMA port %s: event %s on QP %u (its owner sees the error and drops it)",
                 port_name, event.what, event.qp_num);
      return;
    case PortEventKind::kDeviceFatal:
      actions.fatal();
      LogError("RDMA port %s: event %s: the device is gone, its paths stop", port_name, event.what);
      return;
    case PortEventKind::kOther:
      LogInfo("RDMA port %s: event %s", port_name, event.what);
      return;
  }
}

PortEventLoop::PortEventLoop(std::unique_ptr<PortEventSource> source, std::string port_name,
                             uint8_t port, PortEventActions actions)
    : source_(std::move(source)),
      port_name_(std::move(port_name)),
      port_(port),
      actions_(std::move(actions)),
      thread_([this] { Run(); }) {}

PortEventLoop::~PortEventLoop() {
  stop_.Notify();
  thread_.join();
}

void PortEventLoop::Run() {
  while (!stop_.HasBeenNotified()) {
    std::optional<PortEvent> event = source_->Next(kStopCheck);
    if (!event) continue;
    events_.fetch_add(1);
    DispatchPortEvent(*event, port_name_, port_, actions_);
  }
}

}  // namespace unipool
