#include "unipool/verbs/port_set.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"

namespace unipool {

std::vector<std::string> RdmaDeviceNames(std::string_view list, std::string_view one) {
  if (list.empty()) list = one;
  if (list.empty()) {
    const char* env = std::getenv("UNIPOOL_RDMA_DEVICES");
    if (env == nullptr) env = std::getenv("UNIPOOL_RDMA_DEVICE");
    if (env != nullptr) list = env;
  }
  return absl::StrSplit(absl::string_view(list.data(), list.size()), ',', absl::SkipWhitespace());
}

absl::StatusOr<std::unique_ptr<RdmaPortSet>> RdmaPortSet::Create(std::vector<std::string> devices,
                                                                 OpenHook on_open) {
  ASSIGN_OR_RETURN(std::vector<RdmaPortName> ports, RdmaDevice::ListPorts(devices));
  std::unique_ptr<RdmaPortSet> set(new RdmaPortSet(std::move(devices), std::move(on_open)));
  absl::MutexLock lock(&set->mu_);
  for (RdmaPortName& port : ports) set->pending_.push_back({std::move(port), ""});
  set->TryPending();
  set->last_refresh_ = absl::Now();
  return set;
}

bool RdmaPortSet::Refresh(absl::Duration min_interval) {
  CheckOpened(min_interval);
  absl::MutexLock lock(&mu_);
  absl::Time now = absl::Now();
  if (now - last_refresh_ < min_interval) return false;
  last_refresh_ = now;
  if (devices_.empty()) AddNewlyListed();
  return TryPending();
}

void RdmaPortSet::CheckOpened(absl::Duration min_interval) {
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    if (now - last_check_ < min_interval) return;
    last_check_ = now;
  }
  for (RdmaDevice* device : Opened()) {
    device->RecheckLink();
    if (device->GidStale() && device->RefreshGid()) {
      LogInfo("RDMA port %s:%u: new GID %s (found by polling), paths over it planned again",
              device->name(), device->port(), FormatGid(device->gid()));
    }
  }
}

void RdmaPortSet::WatchEvents(RdmaDevice& device) {
  std::unique_ptr<PortEventSource> source = DeviceEventSource(device);
  if (source == nullptr) return;  // polled only
  PortEventActions actions;
  actions.link = [&device](bool active) { device.NoteLinkEvent(active); };
  actions.refresh_gid = [&device]() {
    return device.RefreshGid() ? FormatGid(device.gid()) : std::string();
  };
  actions.fatal = [&device] { device.NoteLinkEvent(false); };
  event_loops_.push_back(std::make_unique<PortEventLoop>(
      std::move(source), absl::StrFormat("%s:%u", device.name(), device.port()), device.port(),
      std::move(actions)));
}

// Only devices not seen before are opened to count their ports: this runs
// every second on a node's heartbeat thread.
void RdmaPortSet::AddNewlyListed() {
  absl::StatusOr<std::vector<std::string>> names = RdmaDevice::DeviceNames();
  if (!names.ok()) return;
  std::vector<std::string> unseen;
  for (std::string& name : *names) {
    bool known = std::any_of(pending_.begin(), pending_.end(),
                             [&](const Pending& p) { return p.name.device == name; }) ||
                 std::any_of(opened_.begin(), opened_.end(),
                             [&](const auto& d) { return d->name() == name; });
    if (!known) unseen.push_back(std::move(name));
  }
  if (unseen.empty()) return;
  absl::StatusOr<std::vector<RdmaPortName>> ports = RdmaDevice::ListPorts(unseen);
  if (!ports.ok()) return;
  for (RdmaPortName& port : *ports) pending_.push_back({std::move(port), ""});
}

bool RdmaPortSet::TryPending() {
  bool opened_one = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    absl::StatusOr<std::unique_ptr<RdmaDevice>> device = RdmaDevice::OpenPort(it->name);
    absl::Status s = device.ok() && on_open_ ? on_open_(**device) : device.status();
    if (s.ok()) {
      RdmaPortInfo info = (*device)->Info();
      LogInfo("RDMA port %s up: GID %s, subnet %s, MTU %d, %s, %u Mbit/s", PortName(info),
              FormatGid(info.gid), SubnetText(info).empty() ? "unknown" : SubnetText(info),
              MtuEnumBytes(info.mtu), info.rc ? "RC and UC" : "UC only", info.rate_mbps);
      WatchEvents(**device);
      opened_.push_back(*std::move(device));
      it = pending_.erase(it);
      opened_one = true;
      continue;
    }
    std::string reason(s.message());
    if (reason != it->last_reason) {
      LogInfo("RDMA port %s:%u not usable, watching it: %s", it->name.device, it->name.port,
              reason);
      it->last_reason = std::move(reason);
    }
    ++it;
  }
  return opened_one;
}

std::vector<RdmaDevice*> RdmaPortSet::Opened() const {
  absl::MutexLock lock(&mu_);
  std::vector<RdmaDevice*> out;
  for (const auto& device : opened_) out.push_back(device.get());
  return out;
}

std::vector<RdmaPortInfo> RdmaPortSet::Infos() const {
  std::vector<RdmaPortInfo> out;
  for (RdmaDevice* device : Opened()) out.push_back(device->Info());
  return out;
}

RdmaDevice* RdmaPortSet::FindByGid(const Gid& gid) const {
  absl::MutexLock lock(&mu_);
  for (const auto& device : opened_) {
    if (device->gid() == gid) return device.get();
  }
  return nullptr;
}

}  // namespace unipool
