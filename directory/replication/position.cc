#include "unipool/replication/position.h"

namespace unipool {
namespace {

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

}  // namespace

std::string EncodePosition(ReplicationPosition position) {
  std::string out;
  PutU64(out, static_cast<uint64_t>(position.term));
  PutU64(out, position.seq);
  return out;
}

std::optional<ReplicationPosition> DecodePosition(std::string_view value) {
  if (value.size() != 16) return std::nullopt;
  return ReplicationPosition{static_cast<int64_t>(GetU64(value.substr(0, 8))),
                             GetU64(value.substr(8, 8))};
}

}  // namespace unipool
