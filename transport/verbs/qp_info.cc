#include "unipool/verbs/qp_info.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace unipool {

flatbuffers::Offset<wire::RdmaEndpoint> EndpointToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                       const QpEndpoint& e) {
  auto gid = fbb.CreateVector(e.gid.data(), e.gid.size());
  return wire::CreateRdmaEndpoint(fbb, e.qp_num, e.psn, e.lid, gid, static_cast<uint8_t>(e.mtu));
}

absl::StatusOr<QpEndpoint> EndpointFromWire(const wire::RdmaEndpoint* w) {
  if (w == nullptr) return absl::InvalidArgumentError("RDMA endpoint missing");
  if (w->gid() == nullptr || w->gid()->size() != 16) {
    return absl::InvalidArgumentError("RDMA endpoint GID must be 16 bytes");
  }
  if (w->mtu() < IBV_MTU_256 || w->mtu() > IBV_MTU_4096) {
    return absl::InvalidArgumentError(
        absl::StrFormat("RDMA endpoint MTU code %u invalid", w->mtu()));
  }
  if (w->psn() >= (1u << 24)) {
    return absl::InvalidArgumentError("RDMA endpoint PSN has more than 24 bits");
  }
  QpEndpoint e;
  e.qp_num = w->qp_num();
  e.psn = w->psn();
  e.lid = w->lid();
  std::copy(w->gid()->begin(), w->gid()->end(), e.gid.begin());
  e.mtu = static_cast<ibv_mtu>(w->mtu());
  return e;
}

ibv_mtu NegotiateMtu(ibv_mtu local, ibv_mtu remote) { return std::min(local, remote); }

int MtuBytes(ibv_mtu mtu) { return 128 << static_cast<int>(mtu); }

int ChooseGidIndex(std::span<const Gid> table) {
  for (size_t i = 0; i < table.size(); ++i) {
    if (IsIpv4MappedGid(table[i])) return static_cast<int>(i);
  }
  for (size_t i = 0; i < table.size(); ++i) {
    if (!IsZeroGid(table[i])) return static_cast<int>(i);
  }
  return -1;
}

std::vector<Piece> SplitTransfer(uint64_t length, uint64_t max_message) {
  std::vector<Piece> pieces;
  for (uint64_t at = 0; at < length; at += max_message) {
    pieces.push_back({at, std::min(max_message, length - at)});
  }
  return pieces;
}

absl::Status RetryLostTransfers(int max_attempts,
                                absl::FunctionRef<absl::Status(int attempt)> attempt) {
  absl::Status last;
  for (int n = 1; n <= max_attempts; ++n) {
    last = attempt(n);
    if (last.ok()) return last;
    if (last.code() != absl::StatusCode::kDataLoss &&
        last.code() != absl::StatusCode::kDeadlineExceeded) {
      return last;
    }
  }
  return absl::DataLossError(
      absl::StrFormat("transfer lost %d times in a row (last: %s)", max_attempts, last.message()));
}

}  // namespace unipool
