// The pure parts of RDMA connection set-up, apart from any device so they
// can be unit-tested: queue-pair endpoints and their wire form, path MTU
// negotiation, GID choice, splitting of large transfers, and the bounded
// retry of transfers that a UC fabric may silently drop.
#ifndef UNIPOOL_VERBS_QP_INFO_H_
#define UNIPOOL_VERBS_QP_INFO_H_

#include <infiniband/verbs.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"
#include "unipool/common/rdma_port.h"

namespace unipool {

// What one end tells the other to connect a queue pair.
struct QpEndpoint {
  uint32_t qp_num = 0;
  uint32_t psn = 0;  // 24 bits
  uint16_t lid = 0;  // 0 on RoCE (routed by GID)
  Gid gid{};
  ibv_mtu mtu = IBV_MTU_1024;

  bool operator==(const QpEndpoint&) const = default;
};

flatbuffers::Offset<wire::RdmaEndpoint> EndpointToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                       const QpEndpoint& endpoint);
// InvalidArgument when the GID is not 16 bytes, the MTU is not an ibv_mtu or
// the PSN has more than 24 bits.
absl::StatusOr<QpEndpoint> EndpointFromWire(const wire::RdmaEndpoint* endpoint);

// Both ends must use the same path MTU: the smaller of the two active ones
// (Thunderbolt RDMA runs 1024, RoCE NICs usually 1024..4096).
ibv_mtu NegotiateMtu(ibv_mtu local, ibv_mtu remote);
int MtuBytes(ibv_mtu mtu);

// Picks the GID to use from a port's table (index -> GID): the first
// IPv4-mapped one (RoCE v2 over IPv4, as on Apple's fabric and Soft-RoCE),
// else the first non-zero one; -1 when the table has none.
int ChooseGidIndex(std::span<const Gid> table);

// A piece of a transfer: [offset, offset + length) of the whole.
struct Piece {
  uint64_t offset = 0;
  uint64_t length = 0;
};
// Cuts `length` bytes into pieces of at most `max_message` bytes (the
// port's largest message). REQUIRES: max_message > 0.
std::vector<Piece> SplitTransfer(uint64_t length, uint64_t max_message);

// Runs `attempt(n)` for n = 1..max_attempts until it succeeds. DataLoss (a
// checksum mismatch: bytes lost or torn on an unreliable fabric) and
// DeadlineExceeded (a completion that never came) are retried; any other
// error is returned at once. After the last attempt, DataLoss saying how
// many attempts failed.
absl::Status RetryLostTransfers(int max_attempts,
                                absl::FunctionRef<absl::Status(int attempt)> attempt);

}  // namespace unipool

#endif  // UNIPOOL_VERBS_QP_INFO_H_
