#include "unipool/verbs/rdma.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// GID tables are short; this bounds a table a broken device reports.
constexpr int kMaxGidsPerPort = 256;
// Outstanding RDMA READs per QP: what the device allows, at most this.
constexpr int kMaxReadsInFlight = 16;

// An entry that cannot be read is an empty slot (an address removed), not
// the table's end: a new address may sit after it. This many in a row end
// the reading.
constexpr int kEmptyGidsToStop = 16;

std::vector<Gid> GidTable(const VerbsApi& api, ibv_context* context, uint8_t port, int length) {
  std::vector<Gid> table;
  int empty_run = 0;
  for (int g = 0; g < length && g < kMaxGidsPerPort && empty_run < kEmptyGidsToStop; ++g) {
    ibv_gid gid{};
    bool read = api.query_gid(context, port, g, &gid) == 0;
    Gid entry{};
    if (read) std::memcpy(entry.data(), gid.raw, 16);
    empty_run = read && !IsZeroGid(entry) ? 0 : empty_run + 1;
    table.push_back(entry);
  }
  return table;
}

// Link rate of a port in Mbit/s from its speed and width codes (0 when
// the device reports codes this table does not know).
uint32_t PortRateMbps(const ibv_port_attr& attr) {
  uint32_t lane_mbps = 0;
  switch (attr.active_speed) {
    case 1:
      lane_mbps = 2500;
      break;  // SDR
    case 2:
      lane_mbps = 5000;
      break;  // DDR
    case 4:
    case 8:
      lane_mbps = 10000;
      break;  // QDR, FDR10
    case 16:
      lane_mbps = 14062;
      break;  // FDR
    case 32:
      lane_mbps = 25781;
      break;  // EDR
    case 64:
      lane_mbps = 53125;
      break;  // HDR
    case 128:
      lane_mbps = 106250;
      break;  // NDR
    default:
      return 0;
  }
  switch (attr.active_width) {
    case 1:
      return lane_mbps;
    case 2:
      return 4 * lane_mbps;
    case 4:
      return 8 * lane_mbps;
    case 8:
      return 12 * lane_mbps;
    case 16:
      return 2 * lane_mbps;
    default:
      return 0;
  }
}

// Prefix length of the local interface address `ip` (host order), 0 when no
// interface has it. getifaddrs is the same call on Linux and macOS.
uint8_t Ipv4PrefixOf(uint32_t ip) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  uint8_t prefix = 0;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_netmask == nullptr || a->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    auto addr = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    auto mask = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr);
    if (addr == ip) {
      prefix = static_cast<uint8_t>(std::popcount(mask));
      break;
    }
  }
  freeifaddrs(list);
  return prefix;
}

}  // namespace

const char* RdmaModeName(RdmaMode mode) { return mode == RdmaMode::kRC ? "rdma-rc" : "rdma-uc"; }

bool RdmaDevice::UsePort(ibv_context* context, uint8_t port, int gid_index, std::string* why) {
  ibv_device_attr device_attr{};
  if (api_->query_device(context, &device_attr) != 0) {
    *why = absl::StrFormat("query: %s", std::strerror(errno));
    return false;
  }
  ibv_port_attr port_attr{};
  if (port == 0 || port > device_attr.phys_port_cnt) {
    *why = absl::StrFormat("no port %u (the device has %u)", port, device_attr.phys_port_cnt);
    return false;
  }
  if (api_->query_port(context, port, &port_attr) != 0) {
    *why = absl::StrFormat("query port %u: %s", port, std::strerror(errno));
    return false;
  }
  if (port_attr.state != IBV_PORT_ACTIVE) {
    *why = absl::StrFormat("port %u not active (cable out or peer off)", port);
    return false;
  }
  std::vector<Gid> table = GidTable(*api_, context, port, port_attr.gid_tbl_len);
  int chosen = gid_index >= 0 ? gid_index : ChooseGidIndex(table);
  bool has_gid =
      chosen >= 0 && chosen < static_cast<int>(table.size()) && !IsZeroGid(table[chosen]);
  // InfiniBand routes by LID and needs no GID; RoCE needs one. A Thunderbolt
  // port has its GID only once its interface has an IPv4 address.
  if (!has_gid && port_attr.lid == 0) {
    *why = absl::StrFormat("port %u has no usable GID yet (no IPv4 address on its link?)", port);
    return false;
  }
  port_ = port;
  requested_gid_index_ = gid_index;
  {
    absl::MutexLock lock(&gid_mu_);
    gid_index_ = std::max(chosen, 0);
    if (has_gid) gid_ = table[chosen];
    if (std::optional<uint32_t> ip = Ipv4OfGid(gid_)) ipv4_prefix_ = Ipv4PrefixOf(*ip);
  }
  lid_ = port_attr.lid;
  active_mtu_ = port_attr.active_mtu;
  max_message_ = port_attr.max_msg_sz > 0 ? port_attr.max_msg_sz : (1u << 30);
  max_rd_atomic_ = std::max(1, std::min(kMaxReadsInFlight, device_attr.max_qp_rd_atom));
  rate_mbps_ = PortRateMbps(port_attr);
  return true;
}

int RdmaDevice::gid_index() const {
  absl::MutexLock lock(&gid_mu_);
  return gid_index_;
}

Gid RdmaDevice::gid() const {
  absl::MutexLock lock(&gid_mu_);
  return gid_;
}

bool RdmaDevice::RefreshGid() {
  ibv_port_attr attr{};
  if (api_->query_port(context(), port_, &attr) != 0) return false;
  std::vector<Gid> table = GidTable(*api_, context(), port_, attr.gid_tbl_len);
  int chosen = requested_gid_index_ >= 0 ? requested_gid_index_ : ChooseGidIndex(table);
  // No usable GID now (the address is being replaced): keep the old one
  // until the next event or check brings the new one.
  if (chosen < 0 || chosen >= static_cast<int>(table.size()) || IsZeroGid(table[chosen])) {
    return false;
  }
  std::optional<uint32_t> ip = Ipv4OfGid(table[chosen]);
  uint8_t prefix = ip ? Ipv4PrefixOf(*ip) : 0;
  absl::MutexLock lock(&gid_mu_);
  if (gid_ == table[chosen] && gid_index_ == chosen && ipv4_prefix_ == prefix) return false;
  gid_index_ = chosen;
  gid_ = table[chosen];
  ipv4_prefix_ = prefix;
  gid_generation_.fetch_add(1);
  return true;
}

bool RdmaDevice::GidStale() const {
  int index = gid_index();
  ibv_gid now{};
  if (api_->query_gid(context(), port_, index, &now) != 0) return true;
  Gid entry;
  std::memcpy(entry.data(), now.raw, 16);
  return entry != gid();
}

absl::StatusOr<std::vector<RdmaPortName>> RdmaDevice::ListPorts(
    const std::vector<std::string>& names) {
  ASSIGN_OR_RETURN(const VerbsApi* api, LoadVerbs());
  int count = 0;
  DeviceListHandle list(api->get_device_list(&count), DeviceListDeleter{api});
  if (list == nullptr || count == 0) {
    return absl::FailedPreconditionError("no RDMA device on this machine");
  }
  std::vector<RdmaPortName> ports;
  for (int i = 0; i < count; ++i) {
    std::string name = api->get_device_name(list.get()[i]);
    if (!names.empty() && std::find(names.begin(), names.end(), name) == names.end()) continue;
    ContextHandle context(api->open_device(list.get()[i]), ContextDeleter{api});
    ibv_device_attr attr{};
    if (context == nullptr || api->query_device(context.get(), &attr) != 0) {
      ports.push_back({name, 1});  // retried (and its failure logged) by whoever opens it
      continue;
    }
    for (uint8_t port = 1; port <= attr.phys_port_cnt; ++port) ports.push_back({name, port});
  }
  for (const std::string& name : names) {
    bool found = std::any_of(ports.begin(), ports.end(),
                             [&](const RdmaPortName& p) { return p.device == name; });
    if (!found) ports.push_back({name, 1});  // not there yet: watched
  }
  return ports;
}

absl::StatusOr<std::vector<std::string>> RdmaDevice::DeviceNames() {
  ASSIGN_OR_RETURN(const VerbsApi* api, LoadVerbs());
  int count = 0;
  DeviceListHandle list(api->get_device_list(&count), DeviceListDeleter{api});
  std::vector<std::string> names;
  for (int i = 0; list != nullptr && i < count; ++i) {
    names.push_back(api->get_device_name(list.get()[i]));
  }
  return names;
}

absl::StatusOr<std::unique_ptr<RdmaDevice>> RdmaDevice::OpenPort(const RdmaPortName& which,
                                                                 int gid_index) {
  ASSIGN_OR_RETURN(const VerbsApi* api, LoadVerbs());
  int count = 0;
  DeviceListHandle list(api->get_device_list(&count), DeviceListDeleter{api});
  for (int i = 0; list != nullptr && i < count; ++i) {
    if (which.device != api->get_device_name(list.get()[i])) continue;
    std::unique_ptr<RdmaDevice> device(new RdmaDevice());
    device->api_ = api;
    device->name_ = which.device;
    ContextHandle context(api->open_device(list.get()[i]), ContextDeleter{api});
    if (context == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: open: %s", which.device, std::strerror(errno)));
    }
    std::string why;
    if (!device->UsePort(context.get(), which.port, gid_index, &why)) {
      return absl::FailedPreconditionError(absl::StrFormat("%s: %s", which.device, why));
    }
    device->context_ = std::move(context);
    RETURN_IF_ERROR(device->AllocateProtectionDomain());
    return device;
  }
  return absl::FailedPreconditionError(absl::StrFormat("%s: no such RDMA device", which.device));
}

absl::Status RdmaDevice::AllocateProtectionDomain() {
  pd_ = ProtectionDomainHandle(api_->alloc_pd(context()), ProtectionDomainDeleter{api_});
  if (pd_ == nullptr) {
    // Seen on Macs at boot until the cable is replugged (exo#1467): the
    // port set retries, so this is never fatal.
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: ibv_alloc_pd: %s", name_, std::strerror(errno)));
  }
  // RC is what Linux NICs and Soft-RoCE offer; Apple's fabric has only UC.
  supports_rc_ = QueuePair::Create(*this, RdmaMode::kRC).ok();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RdmaDevice>> RdmaDevice::Open(const std::string& name,
                                                             int gid_index) {
  std::vector<std::string> names;
  if (!name.empty()) names.push_back(name);
  ASSIGN_OR_RETURN(std::vector<RdmaPortName> ports, ListPorts(names));
  std::string tried;
  for (const RdmaPortName& port : ports) {
    absl::StatusOr<std::unique_ptr<RdmaDevice>> device = OpenPort(port, gid_index);
    if (device.ok()) return device;
    absl::StrAppend(&tried, " (", device.status().message(), ")");
  }
  return absl::FailedPreconditionError(
      absl::StrFormat("no usable RDMA device%s:%s", name.empty() ? "" : " named " + name, tried));
}

RdmaPortInfo RdmaDevice::Info() const {
  RdmaPortInfo info;
  info.device = name_;
  info.port = port_;
  {
    absl::MutexLock lock(&gid_mu_);
    info.gid = gid_;
    info.ipv4_prefix = ipv4_prefix_;
  }
  info.mtu = static_cast<uint8_t>(active_mtu_);
  info.rc = supports_rc_;
  info.rate_mbps = rate_mbps_;
  info.active = PortActive();
  return info;
}

bool RdmaDevice::PortActive() const {
  if (down_by_event_.load()) return false;
  ibv_port_attr attr{};
  return api_->query_port(context(), port_, &attr) == 0 && attr.state == IBV_PORT_ACTIVE;
}

void RdmaDevice::RecheckLink() {
  if (!down_by_event_.load()) return;
  ibv_port_attr attr{};
  if (api_->query_port(context(), port_, &attr) == 0 && attr.state == IBV_PORT_ACTIVE) {
    down_by_event_.store(false);
  }
}

absl::StatusOr<std::unique_ptr<MemoryRegion>> RdmaDevice::Register(void* addr, size_t length,
                                                                   bool remote) const {
  int access = IBV_ACCESS_LOCAL_WRITE;
  if (remote) access |= IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
  MemoryRegionHandle mr(api_->reg_mr(pd(), addr, length, access), MemoryRegionDeleter{api_});
  if (mr == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: ibv_reg_mr of %u bytes failed: %s (raise `ulimit -l`?)", name_, length,
                        std::strerror(errno)));
  }
  return std::unique_ptr<MemoryRegion>(new MemoryRegion(std::move(mr)));
}

}  // namespace unipool
