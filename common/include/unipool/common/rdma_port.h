// RDMA ports (RdmaPortInfo, unipool/pool_types.h) on the wire and as text.
// Nodes register them, the directory shows them and clients match them to
// their own ports; none of this needs the verbs library.
//
// Thread safety: pure functions.
#ifndef UNIPOOL_COMMON_RDMA_PORT_H_
#define UNIPOOL_COMMON_RDMA_PORT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"
#include "unipool/pool_types.h"

namespace unipool {

using Gid = std::array<uint8_t, 16>;

// A peer may announce at most this many ports (a Mac Studio has six
// Thunderbolt ports; a RoCE host a few NICs of one or two ports).
inline constexpr size_t kMaxRdmaPorts = 64;
inline constexpr size_t kMaxRdmaDeviceNameBytes = 64;

bool IsIpv4MappedGid(const Gid& gid);
bool IsZeroGid(const Gid& gid);
// "::ffff:192.0.2.1" for an IPv4-mapped GID, else eight hex groups.
std::string FormatGid(const Gid& gid);
// The IPv4 address (host order) an IPv4-mapped GID carries.
std::optional<uint32_t> Ipv4OfGid(const Gid& gid);
// "10.77.1.0/30"; empty when the GID is not IPv4-mapped or the prefix unknown.
std::string SubnetText(const RdmaPortInfo& port);
// 256 .. 4096 for an ibv_mtu enum value 1..5; 0 otherwise.
int MtuEnumBytes(uint8_t mtu);
// "rdma_en2:1"
std::string PortName(const RdmaPortInfo& port);

flatbuffers::Offset<wire::RdmaPort> RdmaPortToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                   const RdmaPortInfo& port);
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::RdmaPort>>> RdmaPortsToWire(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<RdmaPortInfo>& ports);
// InvalidArgument naming the field when a peer's port is malformed: a GID
// that is not 16 bytes, an MTU outside 1..5, a prefix over 32, a device
// name over 64 bytes, port 0, or more than kMaxRdmaPorts ports.
absl::StatusOr<RdmaPortInfo> RdmaPortFromWire(const wire::RdmaPort* port);
absl::StatusOr<std::vector<RdmaPortInfo>> RdmaPortsFromWire(
    const flatbuffers::Vector<flatbuffers::Offset<wire::RdmaPort>>* ports);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_RDMA_PORT_H_
