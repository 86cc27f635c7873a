#include "unipool/tcp/tcp_node_io.h"

#include <vector>

#include "unipool/common/protocol.h"

namespace unipool {

absl::Status TcpNodeIo::Write(const std::string& node_address, std::span<const WriteOp> ops) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<wire::Range> ranges;
  std::vector<std::span<const uint8_t>> payload;
  ranges.reserve(ops.size());
  payload.reserve(ops.size());
  for (const WriteOp& op : ops) {
    ranges.emplace_back(op.offset, op.bytes.size());
    payload.push_back(op.bytes);
  }
  auto vec = fbb.CreateVectorOfStructs(ranges);
  FinishMessage(fbb, wire::CreateWrite(fbb, vec));
  return pool_->Call(node_address, fbb, payload, {}).status();
}

absl::Status TcpNodeIo::Read(const std::string& node_address, std::span<const ReadOp> ops) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<wire::Range> ranges;
  std::vector<std::span<uint8_t>> sinks;
  ranges.reserve(ops.size());
  sinks.reserve(ops.size());
  for (const ReadOp& op : ops) {
    ranges.emplace_back(op.offset, op.into.size());
    sinks.push_back(op.into);
  }
  auto vec = fbb.CreateVectorOfStructs(ranges);
  FinishMessage(fbb, wire::CreateRead(fbb, vec));
  return pool_->Call(node_address, fbb, {}, sinks).status();
}

}  // namespace unipool
