// Port events (transport/verbs/port_events.h) with no RDMA device: verbs'
// event records classified, and a loop fed by a scripted source applying
// each event to its own port only, in order.
#include "unipool/verbs/port_events.h"

#include <deque>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace unipool {
namespace {

ibv_async_event PortEventOf(ibv_event_type type, int port) {
  ibv_async_event event{};
  event.event_type = type;
  event.element.port_num = port;
  return event;
}

// Hands out the events a test pushes, as a device's channel would.
class ScriptedSource : public PortEventSource {
 public:
  void Push(PortEvent event) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(event));
  }
  std::optional<PortEvent> Next(absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
    PortEvent event = std::move(queue_.front());
    queue_.pop_front();
    return event;
  }

 private:
  absl::Mutex mu_;
  std::deque<PortEvent> queue_ ABSL_GUARDED_BY(mu_);
};

// What the actions were asked to do, in order.
struct Recorder {
  absl::Mutex mu;
  std::vector<std::string> calls ABSL_GUARDED_BY(mu);
  std::string new_gid;  // what refresh_gid reports (set before the loop starts)

  PortEventActions Actions() {
    PortEventActions actions;
    actions.link = [this](bool active) { Add(active ? "up" : "down"); };
    actions.refresh_gid = [this] {
      Add("refresh");
      return new_gid;
    };
    actions.fatal = [this] { Add("fatal"); };
    return actions;
  }
  void Add(std::string call) {
    absl::MutexLock lock(&mu);
    calls.push_back(std::move(call));
  }
  std::vector<std::string> Calls() {
    absl::MutexLock lock(&mu);
    return calls;
  }
};

// Waits (bounded) until the loop has read `n` events.
bool WaitForEvents(const PortEventLoop& loop, uint64_t n) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (loop.events() < n) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(PortEventsTest, VerbsEventsAreClassifiedWithTheirPortOrQueuePair) {
  PortEvent down = ToPortEvent(PortEventOf(IBV_EVENT_PORT_ERR, 1), "port error");
  EXPECT_EQ(down.kind, PortEventKind::kPortDown);
  EXPECT_EQ(down.port, 1);
  EXPECT_EQ(down.what, "port error");
  EXPECT_EQ(ToPortEvent(PortEventOf(IBV_EVENT_PORT_ACTIVE, 2), "").kind,
            PortEventKind::kPortActive);
  EXPECT_EQ(ToPortEvent(PortEventOf(IBV_EVENT_PORT_ACTIVE, 2), "").port, 2);
  PortEvent gid = ToPortEvent(PortEventOf(IBV_EVENT_GID_CHANGE, 1), "");
  EXPECT_EQ(gid.kind, PortEventKind::kGidChange);
  EXPECT_EQ(gid.port, 1);

  ibv_qp qp{};
  qp.qp_num = 4242;
  ibv_async_event fatal{};
  fatal.event_type = IBV_EVENT_QP_FATAL;
  fatal.element.qp = &qp;
  PortEvent qp_event = ToPortEvent(fatal, "");
  EXPECT_EQ(qp_event.kind, PortEventKind::kQueuePairFatal);
  EXPECT_EQ(qp_event.qp_num, 4242u);
  EXPECT_EQ(qp_event.port, 0) << "a QP event is about no port";

  ibv_async_event device{};
  device.event_type = IBV_EVENT_DEVICE_FATAL;
  EXPECT_EQ(ToPortEvent(device, "").kind, PortEventKind::kDeviceFatal);
  EXPECT_EQ(ToPortEvent(PortEventOf(IBV_EVENT_SM_CHANGE, 1), "").kind, PortEventKind::kOther);
}

TEST(PortEventsTest, ALoopAppliesEachEventOfItsPortInOrder) {
  Recorder recorder;
  recorder.new_gid = "::ffff:10.77.9.2";
  auto source = std::make_unique<ScriptedSource>();
  ScriptedSource* script = source.get();
  PortEventLoop loop(std::move(source), "rxe_ab:1", /*port=*/1, recorder.Actions());

  // A cable pulled, plugged back in with a new address, then the device's
  // other port and a queue pair reporting, then the device gone.
  script->Push(ToPortEvent(PortEventOf(IBV_EVENT_PORT_ERR, 1), "port error"));
  script->Push(ToPortEvent(PortEventOf(IBV_EVENT_PORT_ACTIVE, 1), "port active"));
  script->Push(ToPortEvent(PortEventOf(IBV_EVENT_GID_CHANGE, 1), "GID table change"));
  script->Push(ToPortEvent(PortEventOf(IBV_EVENT_PORT_ERR, 2), "port error"));
  script->Push(ToPortEvent(PortEventOf(IBV_EVENT_GID_CHANGE, 2), "GID table change"));
  PortEvent qp;
  qp.kind = PortEventKind::kQueuePairFatal;
  qp.qp_num = 17;
  qp.what = "local work queue catastrophic error";
  script->Push(qp);
  PortEvent device;
  device.kind = PortEventKind::kDeviceFatal;
  device.what = "local catastrophic error";
  script->Push(device);
  ASSERT_TRUE(WaitForEvents(loop, 7)) << "read " << loop.events() << " of 7 events";

  // The other port's events and the QP's touch nothing of this port; a
  // PORT_ACTIVE reads the GID again (the address may be new).
  EXPECT_EQ(recorder.Calls(),
            (std::vector<std::string>{"down", "up", "refresh", "refresh", "fatal"}));
}

TEST(PortEventsTest, ALoopStopsPromptlyWithNoEvents) {
  Recorder recorder;
  absl::Time start = absl::Now();
  {
    PortEventLoop loop(std::make_unique<ScriptedSource>(), "rxe0:1", 1, recorder.Actions());
    EXPECT_EQ(loop.events(), 0u);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "the loop's thread must see the stop";
  EXPECT_TRUE(recorder.Calls().empty());
}

}  // namespace
}  // namespace unipool
