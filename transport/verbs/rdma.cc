#include "unipool/verbs/rdma.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// GID tables are short; this bounds a table a broken device reports.
constexpr int kMaxGidsPerPort = 256;
// Outstanding RDMA READs per QP: what the device allows, at most this.
constexpr int kMaxReadsInFlight = 16;

std::vector<Gid> GidTable(const VerbsApi& api, ibv_context* context, uint8_t port, int length) {
  std::vector<Gid> table;
  for (int g = 0; g < length && g < kMaxGidsPerPort; ++g) {
    ibv_gid gid{};
    if (api.query_gid(context, port, g, &gid) != 0) break;
    Gid entry;
    std::memcpy(entry.data(), gid.raw, 16);
    table.push_back(entry);
  }
  return table;
}

}  // namespace

const char* RdmaModeName(RdmaMode mode) { return mode == RdmaMode::kRC ? "rdma-rc" : "rdma-uc"; }

bool RdmaDevice::UsePort(ibv_context* context, int gid_index, std::string* tried) {
  ibv_device_attr device_attr{};
  if (api_->query_device(context, &device_attr) != 0) {
    *tried += absl::StrFormat(" %s(query: %s)", name_, std::strerror(errno));
    return false;
  }
  for (uint8_t port = 1; port <= device_attr.phys_port_cnt; ++port) {
    ibv_port_attr port_attr{};
    if (api_->query_port(context, port, &port_attr) != 0 || port_attr.state != IBV_PORT_ACTIVE) {
      continue;
    }
    std::vector<Gid> table = GidTable(*api_, context, port, port_attr.gid_tbl_len);
    int chosen = gid_index >= 0 ? gid_index : ChooseGidIndex(table);
    bool has_gid = chosen >= 0 && chosen < static_cast<int>(table.size());
    // InfiniBand routes by LID and needs no GID; RoCE needs one.
    if (!has_gid && port_attr.lid == 0) {
      *tried += absl::StrFormat(" %s:%u(no usable GID)", name_, port);
      continue;
    }
    port_ = port;
    gid_index_ = std::max(chosen, 0);
    if (has_gid) gid_ = table[chosen];
    lid_ = port_attr.lid;
    active_mtu_ = port_attr.active_mtu;
    max_message_ = port_attr.max_msg_sz > 0 ? port_attr.max_msg_sz : (1u << 30);
    max_rd_atomic_ = std::max(1, std::min(kMaxReadsInFlight, device_attr.max_qp_rd_atom));
    return true;
  }
  *tried += absl::StrFormat(" %s(no active port)", name_);
  return false;
}

absl::StatusOr<std::unique_ptr<RdmaDevice>> RdmaDevice::Open(const std::string& name,
                                                             int gid_index) {
  ASSIGN_OR_RETURN(const VerbsApi* api, LoadVerbs());
  int count = 0;
  DeviceListHandle list(api->get_device_list(&count), DeviceListDeleter{api});
  if (list == nullptr || count == 0) {
    return absl::FailedPreconditionError("no RDMA device on this machine");
  }
  std::unique_ptr<RdmaDevice> device(new RdmaDevice());
  device->api_ = api;
  std::string tried;
  for (int i = 0; i < count && device->context_ == nullptr; ++i) {
    device->name_ = api->get_device_name(list.get()[i]);
    if (!name.empty() && device->name_ != name) continue;
    ContextHandle context(api->open_device(list.get()[i]), ContextDeleter{api});
    if (context == nullptr) {
      tried += absl::StrFormat(" %s(open: %s)", device->name_, std::strerror(errno));
      continue;
    }
    if (device->UsePort(context.get(), gid_index, &tried)) device->context_ = std::move(context);
  }
  if (device->context_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("no usable RDMA device%s:%s", name.empty() ? "" : " named " + name, tried));
  }
  device->pd_ =
      ProtectionDomainHandle(api->alloc_pd(device->context()), ProtectionDomainDeleter{api});
  if (device->pd_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: ibv_alloc_pd: %s", device->name_, std::strerror(errno)));
  }
  // RC is what Linux NICs and Soft-RoCE offer; Apple's fabric has only UC.
  auto probe = QueuePair::Create(*device, RdmaMode::kRC);
  device->supports_rc_ = probe.ok();
  return device;
}

bool RdmaDevice::PortActive() const {
  ibv_port_attr attr{};
  return api_->query_port(context(), port_, &attr) == 0 && attr.state == IBV_PORT_ACTIVE;
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
