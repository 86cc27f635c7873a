#include "unipool/tcp/tcp_node_io.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "unipool/common/checksum.h"
#include "unipool/common/protocol.h"
#include "unipool/pool_types.h"

namespace unipool {
absl::Status TcpNodeIo::Write(const std::string& node_address, std::span<const WriteOp> ops) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<wire::Range> ranges;
  std::vector<std::span<const uint8_t>> payload;
  std::vector<size_t> op_of_piece;  // a large op goes in several pieces
  ranges.reserve(ops.size());
  payload.reserve(ops.size());
  bool hashing = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    const WriteOp& op = ops[i];
    ranges.emplace_back(op.offset, op.bytes.size());
    for (size_t done = 0; done < op.bytes.size(); done += kSentGroupBytes) {
      payload.push_back(
          op.bytes.subspan(done, std::min<size_t>(kSentGroupBytes, op.bytes.size() - done)));
      op_of_piece.push_back(i);
    }
    if (op.hashed != nullptr) {
      hashing = true;
      if (op.bytes.empty()) *op.hashed = Checksum(op.bytes);
    }
  }
  auto vec = fbb.CreateVectorOfStructs(ranges);
  auto capabilities = OpCapabilities(fbb, ops);
  FinishMessage(fbb, wire::CreateWrite(fbb, vec, capabilities));
  if (!hashing) return pool_->Call(node_address, fbb, payload, {}).status();
  // Each piece is hashed just after the kernel copied it out.
  std::vector<std::unique_ptr<ChecksumBuilder>> partial(ops.size());
  PayloadSent on_sent = [&](size_t first, size_t last) {
    for (size_t p = first; p < last; ++p) {
      const WriteOp& op = ops[op_of_piece[p]];
      std::span<const uint8_t> piece = payload[p];
      if (op.hashed == nullptr) continue;
      if (piece.size() == op.bytes.size()) {
        *op.hashed = Checksum(piece);
        continue;
      }
      std::unique_ptr<ChecksumBuilder>& hash = partial[op_of_piece[p]];
      // A first piece starts over (the pool may send the request twice).
      if (piece.data() == op.bytes.data()) hash = std::make_unique<ChecksumBuilder>();
      hash->Update(piece);
      if (piece.data() + piece.size() == op.bytes.data() + op.bytes.size()) {
        *op.hashed = hash->Finish();
      }
    }
  };
  return pool_->Call(node_address, fbb, payload, {}, &on_sent).status();
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
  auto capabilities = OpCapabilities(fbb, ops);
  FinishMessage(fbb, wire::CreateRead(fbb, vec, capabilities));
  return pool_->Call(node_address, fbb, {}, sinks).status();
}

}  // namespace unipool
