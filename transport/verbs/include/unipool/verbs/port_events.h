// Port and device events of an opened RDMA port (ibv_get_async_event): a
// cable pulled or plugged in (PORT_ERR, PORT_ACTIVE), a new address on the
// link (GID_CHANGE: on a Mac a replugged Thunderbolt port may come back with
// another link-local IPv4, so another GID), a queue pair or the device gone
// fatal. Each event is acknowledged, logged in one line and applied to the
// port at once, ahead of the polling that stays as the fallback (Apple's
// stack is not known to deliver these events; RdmaPortSet::Refresh polls).
//
// The reading (PortEventSource) is apart from what an event does
// (DispatchPortEvent), so the dispatch is unit-tested with a scripted source.
//
// Thread safety: DispatchPortEvent is a pure function of its arguments;
// PortEventLoop runs one thread of its own and is thread-safe.
#ifndef UNIPOOL_VERBS_PORT_EVENTS_H_
#define UNIPOOL_VERBS_PORT_EVENTS_H_

#include <infiniband/verbs.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace unipool {

class RdmaDevice;

enum class PortEventKind {
  kPortDown,        // IBV_EVENT_PORT_ERR
  kPortActive,      // IBV_EVENT_PORT_ACTIVE
  kGidChange,       // IBV_EVENT_GID_CHANGE
  kQueuePairFatal,  // a QP (or its CQ) in error: its owner sees the error itself
  kDeviceFatal,     // IBV_EVENT_DEVICE_FATAL: nothing of the context works any more
  kOther,           // logged only
};

struct PortEvent {
  PortEventKind kind = PortEventKind::kOther;
  uint8_t port = 0;     // of port events (a device's ports share its events)
  uint32_t qp_num = 0;  // of queue-pair events
  std::string what;     // the event's verbs name, for the log
};

// The kind of `event` and the port or QP it is about; `what` names it.
PortEvent ToPortEvent(const ibv_async_event& event, std::string what);

// Where events come from: the device (DeviceEventSource) or a test's script.
class PortEventSource {
 public:
  virtual ~PortEventSource() = default;
  // The next event (already acknowledged), or nullopt when none came within
  // `timeout`.
  virtual std::optional<PortEvent> Next(absl::Duration timeout) = 0;
};

// The events of `device`'s context; null when the verbs library has no
// async events. `device` must outlive the source.
std::unique_ptr<PortEventSource> DeviceEventSource(const RdmaDevice& device);

// What events do to one opened port.
struct PortEventActions {
  // The link went down (false) or came up (true).
  std::function<void(bool active)> link;
  // Reads the port's GID again; returns the new GID's text when it changed,
  // else empty.
  std::function<std::string()> refresh_gid;
  // The device is gone for good (the port stays down until reopened).
  std::function<void()> fatal;
};

// Applies `event` to port `port` (called `port_name` in the log) and logs
// one line. A PORT_ACTIVE also reads the GID again: a replugged link may
// have come back with another address before its GID_CHANGE is read.
// Events about another port of the same device are ignored (each port is
// opened, and sees the device's events, on its own).
void DispatchPortEvent(const PortEvent& event, const std::string& port_name, uint8_t port,
                       const PortEventActions& actions);

// Reads `source` on a thread of its own until destroyed, dispatching each
// event to `port`.
class PortEventLoop {
 public:
  PortEventLoop(std::unique_ptr<PortEventSource> source, std::string port_name, uint8_t port,
                PortEventActions actions);
  ~PortEventLoop();
  PortEventLoop(const PortEventLoop&) = delete;
  PortEventLoop& operator=(const PortEventLoop&) = delete;

  // Events read so far (of any port of the device).
  uint64_t events() const { return events_.load(); }

 private:
  void Run();

  const std::unique_ptr<PortEventSource> source_;
  const std::string port_name_;
  const uint8_t port_;
  const PortEventActions actions_;
  std::atomic<uint64_t> events_{0};
  absl::Notification stop_;
  std::thread thread_;  // last: started once the rest is set
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_PORT_EVENTS_H_
