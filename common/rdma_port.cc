#include "unipool/common/rdma_port.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace unipool {

bool IsIpv4MappedGid(const Gid& gid) {
  for (int i = 0; i < 10; ++i) {
    if (gid[i] != 0) return false;
  }
  return gid[10] == 0xff && gid[11] == 0xff;
}

bool IsZeroGid(const Gid& gid) {
  return std::all_of(gid.begin(), gid.end(), [](uint8_t b) { return b == 0; });
}

std::string FormatGid(const Gid& gid) {
  if (IsIpv4MappedGid(gid)) {
    return absl::StrFormat("::ffff:%u.%u.%u.%u", gid[12], gid[13], gid[14], gid[15]);
  }
  std::string out;
  for (int i = 0; i < 16; i += 2) {
    absl::StrAppendFormat(&out, "%s%02x%02x", i == 0 ? "" : ":", gid[i], gid[i + 1]);
  }
  return out;
}

std::optional<uint32_t> Ipv4OfGid(const Gid& gid) {
  if (!IsIpv4MappedGid(gid)) return std::nullopt;
  return uint32_t{gid[12]} << 24 | uint32_t{gid[13]} << 16 | uint32_t{gid[14]} << 8 | gid[15];
}

std::string SubnetText(const RdmaPortInfo& port) {
  std::optional<uint32_t> ip = Ipv4OfGid(port.gid);
  if (!ip || port.ipv4_prefix == 0 || port.ipv4_prefix > 32) return "";
  uint32_t mask = port.ipv4_prefix == 32 ? ~0u : ~(~0u >> port.ipv4_prefix);
  uint32_t net = *ip & mask;
  return absl::StrFormat("%u.%u.%u.%u/%u", net >> 24, (net >> 16) & 255, (net >> 8) & 255,
                         net & 255, port.ipv4_prefix);
}

int MtuEnumBytes(uint8_t mtu) { return mtu >= 1 && mtu <= 5 ? 128 << mtu : 0; }

std::string PortName(const RdmaPortInfo& port) {
  return absl::StrFormat("%s:%u", port.device, port.port);
}

flatbuffers::Offset<wire::RdmaPort> RdmaPortToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                   const RdmaPortInfo& port) {
  auto device = fbb.CreateString(port.device);
  auto gid = fbb.CreateVector(port.gid.data(), port.gid.size());
  return wire::CreateRdmaPort(fbb, device, port.port, gid, port.ipv4_prefix, port.mtu, port.rc,
                              port.rate_mbps, port.active);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::RdmaPort>>> RdmaPortsToWire(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<RdmaPortInfo>& ports) {
  std::vector<flatbuffers::Offset<wire::RdmaPort>> items;
  items.reserve(ports.size());
  for (const RdmaPortInfo& port : ports) items.push_back(RdmaPortToWire(fbb, port));
  return fbb.CreateVector(items);
}

absl::StatusOr<RdmaPortInfo> RdmaPortFromWire(const wire::RdmaPort* w) {
  if (w == nullptr) return absl::InvalidArgumentError("RDMA port missing");
  RdmaPortInfo port;
  if (w->device() == nullptr || w->device()->size() == 0 ||
      w->device()->size() > kMaxRdmaDeviceNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("RDMA port device name must be 1..%u bytes", kMaxRdmaDeviceNameBytes));
  }
  port.device = w->device()->str();
  if (w->port() == 0) return absl::InvalidArgumentError("RDMA port number 0 (ports count from 1)");
  port.port = w->port();
  if (w->gid() == nullptr || w->gid()->size() != port.gid.size()) {
    return absl::InvalidArgumentError("RDMA port GID must be 16 bytes");
  }
  std::copy(w->gid()->begin(), w->gid()->end(), port.gid.begin());
  if (w->ipv4_prefix() > 32) {
    return absl::InvalidArgumentError(
        absl::StrFormat("RDMA port IPv4 prefix /%u is over 32", w->ipv4_prefix()));
  }
  port.ipv4_prefix = w->ipv4_prefix();
  if (MtuEnumBytes(w->mtu()) == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("RDMA port MTU code %u invalid", w->mtu()));
  }
  port.mtu = w->mtu();
  port.rc = w->rc();
  port.rate_mbps = w->rate_mbps();
  port.active = w->active();
  return port;
}

absl::StatusOr<std::vector<RdmaPortInfo>> RdmaPortsFromWire(
    const flatbuffers::Vector<flatbuffers::Offset<wire::RdmaPort>>* ports) {
  std::vector<RdmaPortInfo> out;
  if (ports == nullptr) return out;
  if (ports->size() > kMaxRdmaPorts) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%u RDMA ports (at most %u)", ports->size(), kMaxRdmaPorts));
  }
  for (const wire::RdmaPort* w : *ports) {
    absl::StatusOr<RdmaPortInfo> port = RdmaPortFromWire(w);
    if (!port.ok()) return port.status();
    out.push_back(*std::move(port));
  }
  return out;
}

}  // namespace unipool
