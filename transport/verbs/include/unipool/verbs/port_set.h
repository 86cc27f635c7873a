// The machine's RDMA ports: every port of every device, or of the devices
// named (--rdma-devices). On a Mac each Thunderbolt cable is its own device
// (rdma_en2, rdma_en3, ...); on Linux a host may have several RoCE NICs.
//
// A port that cannot be opened (down, no GID yet, no protection domain) is
// logged once per reason and tried again by Refresh, so a cable plugged in
// later, or a device that failed at boot, is adopted without a restart. An
// opened port is never closed: when its link drops it reports inactive (and
// its queue pairs fail), and it is used again once ACTIVE.
//
// Each opened port's device events (port_events.h) are read on a thread of
// their own: a port-down event stops its paths at once, a GID change (a new
// address on a replugged link) is read into the port, so the node tells the
// directory and clients plan their paths again. Refresh polls for the same
// changes where no event comes.
//
// Thread safety: thread-safe. Devices returned stay valid for the set's life.
#ifndef UNIPOOL_VERBS_PORT_SET_H_
#define UNIPOOL_VERBS_PORT_SET_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/verbs/port_events.h"
#include "unipool/verbs/rdma.h"

namespace unipool {

// The devices to use: the comma-separated `list` (--rdma-devices), else
// `one` (the older --rdma-device), else $UNIPOOL_RDMA_DEVICES or
// $UNIPOOL_RDMA_DEVICE; empty = every port of every device.
std::vector<std::string> RdmaDeviceNames(std::string_view list, std::string_view one);

class RdmaPortSet {
 public:
  // Runs once per port when it is first opened, before the port is listed
  // (the node registers its slab there). A failure leaves the port unopened,
  // to be tried again.
  using OpenHook = std::function<absl::Status(RdmaDevice&)>;

  // Lists the ports of `devices` (all when empty) and opens what it can.
  // FailedPrecondition when this machine has no verbs library, or no device
  // and none named; a machine whose ports are all down still gets a set.
  static absl::StatusOr<std::unique_ptr<RdmaPortSet>> Create(std::vector<std::string> devices,
                                                             OpenHook on_open = nullptr);
  RdmaPortSet(const RdmaPortSet&) = delete;
  RdmaPortSet& operator=(const RdmaPortSet&) = delete;

  // Tries the ports not opened yet (and, with no names given, devices that
  // appeared), and checks the opened ones' GIDs and links (CheckOpened), at
  // most once per `min_interval`; true when a port was opened.
  bool Refresh(absl::Duration min_interval = absl::Seconds(1));
  // The polling fallback for port events, at most once per `min_interval`:
  // reads a changed GID into its port, and ends a down that an event noted
  // once the port is ACTIVE again.
  void CheckOpened(absl::Duration min_interval = absl::Seconds(1));
  // The opened ports, oldest first.
  std::vector<RdmaDevice*> Opened() const;
  // The opened ports as peers see them, each with its state now.
  std::vector<RdmaPortInfo> Infos() const;
  // The opened port with this GID, or null.
  RdmaDevice* FindByGid(const Gid& gid) const;

 private:
  struct Pending {
    RdmaPortName name;
    std::string last_reason;  // logged when it changes
  };
  RdmaPortSet(std::vector<std::string> devices, OpenHook on_open)
      : devices_(std::move(devices)), on_open_(std::move(on_open)) {}
  // Opens what it can of pending_ (mu_ held: one opener at a time).
  bool TryPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddNewlyListed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts reading `device`'s events, where the library has them.
  void WatchEvents(RdmaDevice& device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> devices_;
  const OpenHook on_open_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<RdmaDevice>> opened_ ABSL_GUARDED_BY(mu_);
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  absl::Time last_refresh_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // After opened_: each loop stops before its device closes.
  std::vector<std::unique_ptr<PortEventLoop>> event_loops_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_PORT_SET_H_
