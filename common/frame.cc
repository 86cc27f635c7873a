#include "unipool/common/frame.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/common/stream.h"

namespace unipool {
namespace {

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void EncodeHeader(uint8_t (&header)[kFrameHeaderBytes], const flatbuffers::FlatBufferBuilder& fbb,
                  std::span<const std::span<const uint8_t>> payload) {
  uint64_t payload_bytes = 0;
  for (auto piece : payload) payload_bytes += piece.size();
  PutU32(header, kFrameMagic);
  PutU32(header + 4, fbb.GetSize());
  PutU64(header + 8, payload_bytes);
}

}  // namespace

absl::StatusOr<FrameSizes> DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderBytes> header,
                                             const FrameLimits& limits) {
  uint32_t magic = GetU32(header.data());
  FrameSizes sizes{.meta_bytes = GetU32(header.data() + 4),
                   .payload_bytes = GetU64(header.data() + 8)};
  if (magic != kFrameMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad frame: magic 0x%08x is not a unipool frame (0x%08x)", magic, kFrameMagic));
  }
  if (sizes.meta_bytes == 0 || sizes.meta_bytes > limits.max_meta_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat("bad frame: meta of %u bytes (allowed 1..%u)",
                                                      sizes.meta_bytes, limits.max_meta_bytes));
  }
  if (sizes.payload_bytes > limits.max_payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad frame: payload of %u bytes over the limit of %u", sizes.payload_bytes,
                        limits.max_payload_bytes));
  }
  return sizes;
}

absl::Status VerifyFrameMeta(const ReceivedFrame& frame) {
  flatbuffers::Verifier verifier(frame.meta.data(), frame.meta.size(),
                                 /*max_depth=*/16, /*max_tables=*/1'000'000);
  if (!wire::VerifyMessageBuffer(verifier) || frame.message()->body() == nullptr) {
    return absl::InvalidArgumentError("bad frame: meta is not a valid unipool message");
  }
  return absl::OkStatus();
}

absl::StatusOr<ReceivedFrame> ReadFrame(Stream stream, const FrameLimits& limits) {
  uint8_t header[kFrameHeaderBytes];
  if (absl::Status s = RecvAll(stream, header, sizeof header); !s.ok()) return s;
  auto sizes = DecodeFrameHeader(header, limits);
  if (!sizes.ok()) return sizes.status();
  ReceivedFrame frame;
  frame.payload_bytes = sizes->payload_bytes;
  // Grown as the bytes arrive, so a header that lies about its size costs
  // the liar the bytes it actually sends, not what it claims.
  constexpr size_t kStep = 1 << 20;
  while (frame.meta.size() < sizes->meta_bytes) {
    size_t have = frame.meta.size();
    size_t step = std::min<size_t>(kStep, sizes->meta_bytes - have);
    frame.meta.resize(have + step);
    if (absl::Status s = RecvAll(stream, frame.meta.data() + have, step); !s.ok()) return s;
  }
  if (absl::Status s = VerifyFrameMeta(frame); !s.ok()) return s;
  return frame;
}

void AppendFrame(std::vector<uint8_t>& out, const flatbuffers::FlatBufferBuilder& fbb,
                 std::span<const std::span<const uint8_t>> payload) {
  uint8_t header[kFrameHeaderBytes];
  EncodeHeader(header, fbb, payload);
  out.insert(out.end(), header, header + kFrameHeaderBytes);
  out.insert(out.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  for (auto piece : payload) out.insert(out.end(), piece.begin(), piece.end());
}

absl::Status WriteFrame(Stream stream, const flatbuffers::FlatBufferBuilder& fbb,
                        std::span<const std::span<const uint8_t>> payload,
                        const PayloadSent* on_sent) {
  uint8_t header[kFrameHeaderBytes];
  EncodeHeader(header, fbb, payload);
  std::vector<iovec> iov;
  iov.reserve(2 + payload.size());
  iov.push_back({header, sizeof header});
  iov.push_back({const_cast<uint8_t*>(fbb.GetBufferPointer()), fbb.GetSize()});
  size_t first = 0;  // the group's first piece
  uint64_t group_bytes = 0;
  for (size_t i = 0; i < payload.size(); ++i) {
    iov.push_back({const_cast<uint8_t*>(payload[i].data()), payload[i].size()});
    group_bytes += payload[i].size();
    bool group_full =
        i + 1 == payload.size() || group_bytes + payload[i + 1].size() > kSentGroupBytes;
    if (on_sent == nullptr || !group_full) continue;
    if (absl::Status s = SendAll(stream, iov); !s.ok()) return s;
    (*on_sent)(first, i + 1);
    iov.clear();
    first = i + 1;
    group_bytes = 0;
  }
  return iov.empty() ? absl::OkStatus() : SendAll(stream, iov);
}

namespace {

absl::Status CheckSinks(uint64_t payload_bytes, std::span<const std::span<uint8_t>> sinks) {
  uint64_t expected = 0;
  for (auto sink : sinks) expected += sink.size();
  if (expected != payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("payload of %u bytes where %u were expected", payload_bytes, expected));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadPayload(Stream stream, uint64_t payload_bytes,
                         std::span<const std::span<uint8_t>> sinks) {
  if (absl::Status s = CheckSinks(payload_bytes, sinks); !s.ok()) return s;
  for (auto sink : sinks) {
    if (absl::Status s = RecvAll(stream, sink.data(), sink.size()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CopyPayload(std::span<const uint8_t> payload,
                         std::span<const std::span<uint8_t>> sinks) {
  if (absl::Status s = CheckSinks(payload.size(), sinks); !s.ok()) return s;
  for (auto sink : sinks) {
    std::memcpy(sink.data(), payload.data(), sink.size());
    payload = payload.subspan(sink.size());
  }
  return absl::OkStatus();
}

}  // namespace unipool
