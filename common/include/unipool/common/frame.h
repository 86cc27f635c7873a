// Length-prefixed frames: the unit of every unipool TCP conversation.
//
//   FrameHeader (16 bytes, little-endian)  | meta (FlatBuffers Message) | payload (raw bytes)
//
// See schema/FORMATS.md. A reader verifies the header's limits and the meta
// with the FlatBuffers Verifier before anything looks at it; the payload is
// left on the stream for the caller to read straight into its destination.
#ifndef UNIPOOL_COMMON_FRAME_H_
#define UNIPOOL_COMMON_FRAME_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"
#include "unipool/common/stream.h"

namespace unipool {

inline constexpr uint32_t kFrameMagic = 0x31465055;  // "UPF1" on the wire
inline constexpr size_t kFrameHeaderBytes = 16;

struct FrameLimits {
  // Largest meta accepted. Default fits a batch of thousands of 1 KiB keys.
  uint32_t max_meta_bytes = 64u << 20;
  // Largest payload accepted in one frame.
  uint64_t max_payload_bytes = 1ull << 30;
};

// A received frame whose meta has been verified. The payload (payload_bytes
// long) is still on the socket.
struct ReceivedFrame {
  std::vector<uint8_t> meta;
  uint64_t payload_bytes = 0;
  const wire::Message* message() const { return wire::GetMessage(meta.data()); }
};

// The sizes a frame header announces. Nothing is allocated from them: a
// reader grows its buffer as the meta's bytes actually arrive.
struct FrameSizes {
  uint32_t meta_bytes = 0;
  uint64_t payload_bytes = 0;
};

// Checks a 16-byte header's magic and sizes against `limits`.
// InvalidArgument (naming the bad field) when it is not acceptable.
absl::StatusOr<FrameSizes> DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderBytes> header,
                                             const FrameLimits& limits);

// Runs the FlatBuffers verifier over a complete meta; InvalidArgument if it
// is not a unipool Message with a body.
absl::Status VerifyFrameMeta(const ReceivedFrame& frame);

// Reads header and meta. InvalidArgument for a malformed frame (bad magic,
// sizes over the limits, meta failing verification): the caller must close
// the connection, since the stream can no longer be trusted. Unavailable for
// a broken connection.
absl::StatusOr<ReceivedFrame> ReadFrame(Stream stream, const FrameLimits& limits);

// Told by WriteFrame that payload pieces [first, last) were handed to the
// kernel, whose copy has just read them: a hash of them now reads from cache.
using PayloadSent = std::function<void(size_t first, size_t last)>;

// Sends a frame whose meta is `fbb`'s finished buffer and whose payload is
// the concatenation of `payload`. Nothing is copied (writev). With
// `on_sent`, the payload goes in groups of about kSentGroupBytes (one piece
// at least), `on_sent` called after each.
absl::Status WriteFrame(Stream stream, const flatbuffers::FlatBufferBuilder& fbb,
                        std::span<const std::span<const uint8_t>> payload = {},
                        const PayloadSent* on_sent = nullptr);
// The same frame's bytes appended to `out`, for a writer that sends them
// later without blocking.
void AppendFrame(std::vector<uint8_t>& out, const flatbuffers::FlatBufferBuilder& fbb,
                 std::span<const std::span<const uint8_t>> payload = {});
// Small enough to stay in a core's L2 cache between the send and the hash.
inline constexpr uint64_t kSentGroupBytes = 128 << 10;

// Reads a frame's payload into `sinks`, whose sizes must add up to
// payload_bytes (else InvalidArgument and the remainder is not read).
absl::Status ReadPayload(Stream stream, uint64_t payload_bytes,
                         std::span<const std::span<uint8_t>> sinks);
// The same from a payload already received whole into memory.
absl::Status CopyPayload(std::span<const uint8_t> payload,
                         std::span<const std::span<uint8_t>> sinks);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_FRAME_H_
