// Frames over a real stream socket (unipool/common/frame.h) and the protocol helpers
// (unipool/common/protocol.h): round trips, and every malformed input rejected with
// the status the caller acts on (InvalidArgument: close the connection;
// Unavailable: the connection broke).
#include "unipool/common/frame.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "unipool/common/protocol.h"
#include "unipool/common/retry_after.h"
#include "unipool/common/socket.h"
#include "unipool/platform/net.h"

namespace unipool {
namespace {

// A connected pair of stream sockets. The reading end times out after a few
// seconds, so a reader waiting for bytes that never come fails the test
// (Unavailable) instead of hanging it.
class FrameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    writer_ = Fd(fds[0]);
    reader_ = Fd(fds[1]);
    timeval timeout{5, 0};
    ASSERT_EQ(setsockopt(reader_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
  }

  // Writes raw bytes (the test's own framing) to the writer end.
  void WriteRaw(const void* data, size_t size) {
    ASSERT_EQ(::send(writer_.get(), data, size, unipool::platform::SendFlags()),
              static_cast<ssize_t>(size));
  }
  void WriteHeader(uint32_t magic, uint32_t meta_bytes, uint64_t payload_bytes) {
    uint8_t header[kFrameHeaderBytes];
    for (int i = 0; i < 4; ++i) header[i] = static_cast<uint8_t>(magic >> (8 * i));
    for (int i = 0; i < 4; ++i) header[4 + i] = static_cast<uint8_t>(meta_bytes >> (8 * i));
    for (int i = 0; i < 8; ++i) header[8 + i] = static_cast<uint8_t>(payload_bytes >> (8 * i));
    WriteRaw(header, sizeof header);
  }

  Fd writer_;
  Fd reader_;
};

void BuildHello(flatbuffers::FlatBufferBuilder& fbb, std::string_view name) {
  auto peer = fbb.CreateString(name.data(), name.size());
  FinishMessage(fbb, wire::CreateHello(fbb, kProtocolVersion, wire::Role::Client, peer));
}

TEST_F(FrameTest, RoundTripWithoutPayload) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "unit-test");
  ASSERT_TRUE(WriteFrame(Stream{.fd = writer_.get()}, fbb).ok());
  auto frame = ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{});
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_EQ(frame->payload_bytes, 0u);
  ASSERT_EQ(frame->message()->body_type(), wire::Body::Hello);
  const wire::Hello* hello = frame->message()->body_as_Hello();
  EXPECT_EQ(hello->protocol_version(), kProtocolVersion);
  EXPECT_EQ(hello->role(), wire::Role::Client);
  EXPECT_EQ(AsStringView(hello->peer_name()), "unit-test");
}

// Several frames back to back, each with a payload in several pieces; the
// payload is larger than the socket buffer, so the writer runs on a thread.
TEST_F(FrameTest, RoundTripWithPayload) {
  const std::vector<size_t> piece_sizes = {1, 4096, 3 << 20, 0, 77};
  std::vector<std::vector<uint8_t>> pieces;
  std::mt19937 rng(1);
  for (size_t size : piece_sizes) {
    std::vector<uint8_t> piece(size);
    for (uint8_t& b : piece) b = static_cast<uint8_t>(rng());
    pieces.push_back(std::move(piece));
  }
  const size_t total = std::accumulate(piece_sizes.begin(), piece_sizes.end(), size_t{0});
  constexpr int kFrames = 3;

  absl::Status write_status;
  std::thread writer([&] {
    std::vector<std::span<const uint8_t>> spans(pieces.begin(), pieces.end());
    for (int i = 0; i < kFrames && write_status.ok(); ++i) {
      flatbuffers::FlatBufferBuilder fbb;
      BuildHello(fbb, "frame-" + std::to_string(i));
      write_status = WriteFrame(Stream{.fd = writer_.get()}, fbb, spans);
    }
  });
  // On a failure, shut the socket so the writer's send fails instead of
  // blocking, then join it.
  auto read_all = [&] {
    for (int i = 0; i < kFrames; ++i) {
      auto frame = ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{});
      ASSERT_TRUE(frame.ok()) << frame.status();
      EXPECT_EQ(AsStringView(frame->message()->body_as_Hello()->peer_name()),
                "frame-" + std::to_string(i));
      ASSERT_EQ(frame->payload_bytes, total);
      // Read into differently cut sinks than the writer's pieces.
      std::vector<uint8_t> head(100), rest(total - 100);
      std::vector<std::span<uint8_t>> sinks = {head, rest};
      ASSERT_TRUE(ReadPayload(Stream{.fd = reader_.get()}, frame->payload_bytes, sinks).ok());
      std::vector<uint8_t> expected;
      for (const auto& piece : pieces) expected.insert(expected.end(), piece.begin(), piece.end());
      std::vector<uint8_t> received = head;
      received.insert(received.end(), rest.begin(), rest.end());
      EXPECT_TRUE(received == expected) << "payload of frame " << i << " differs";
    }
  };
  read_all();
  if (HasFatalFailure()) shutdown(reader_.get(), SHUT_RDWR);
  writer.join();
  EXPECT_TRUE(write_status.ok()) << write_status;
}

TEST_F(FrameTest, PayloadSinksOfTheWrongSizeAreRefused) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "x");
  std::vector<uint8_t> payload(64, 7);
  std::vector<std::span<const uint8_t>> spans = {payload};
  ASSERT_TRUE(WriteFrame(Stream{.fd = writer_.get()}, fbb, spans).ok());
  auto frame = ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{});
  ASSERT_TRUE(frame.ok()) << frame.status();
  std::vector<uint8_t> small(63);
  std::vector<std::span<uint8_t>> sinks = {small};
  EXPECT_EQ(ReadPayload(Stream{.fd = reader_.get()}, frame->payload_bytes, sinks).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FrameTest, BadMagicIsInvalidArgument) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "x");
  WriteHeader(0x54544547 /* "GETT": an HTTP client */, fbb.GetSize(), 0);
  WriteRaw(fbb.GetBufferPointer(), fbb.GetSize());
  auto frame = ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{});
  EXPECT_EQ(frame.status().code(), absl::StatusCode::kInvalidArgument) << frame.status();
}

TEST_F(FrameTest, OversizeOrEmptyMetaIsInvalidArgument) {
  FrameLimits limits;
  limits.max_meta_bytes = 1024;
  // Announced only: the reader must refuse before reading (or allocating) it.
  WriteHeader(kFrameMagic, 1025, 0);
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
  WriteHeader(kFrameMagic, 0xffffffffu, 0);
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  WriteHeader(kFrameMagic, 0, 0);
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FrameTest, OversizePayloadIsInvalidArgument) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "x");
  FrameLimits limits;
  limits.max_payload_bytes = 1 << 20;
  WriteHeader(kFrameMagic, fbb.GetSize(), (1 << 20) + 1);
  WriteRaw(fbb.GetBufferPointer(), fbb.GetSize());
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, limits).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FrameTest, PayloadOverTheDefaultLimitIsInvalidArgument) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "x");
  WriteHeader(kFrameMagic, fbb.GetSize(), (1ull << 30) + 1);
  WriteRaw(fbb.GetBufferPointer(), fbb.GetSize());
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Meta that fails FlatBuffers verification: random bytes of various sizes.
// Each case gets its own connection (after a bad frame the stream is lost).
TEST(FrameVerifyTest, RandomMetaIsInvalidArgument) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 200; ++i) {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    Fd writer(fds[0]), reader(fds[1]);
    std::vector<uint8_t> meta(1 + rng() % 256);
    for (uint8_t& b : meta) b = static_cast<uint8_t>(rng());
    uint8_t header[kFrameHeaderBytes] = {};
    for (int k = 0; k < 4; ++k) header[k] = static_cast<uint8_t>(kFrameMagic >> (8 * k));
    for (int k = 0; k < 4; ++k) header[4 + k] = static_cast<uint8_t>(meta.size() >> (8 * k));
    ASSERT_EQ(::send(writer.get(), header, sizeof header, unipool::platform::SendFlags()), 16);
    ASSERT_EQ(::send(writer.get(), meta.data(), meta.size(), unipool::platform::SendFlags()),
              static_cast<ssize_t>(meta.size()));
    auto frame = ReadFrame(Stream{.fd = reader.get()}, FrameLimits{});
    EXPECT_EQ(frame.status().code(), absl::StatusCode::kInvalidArgument)
        << "case " << i << " (" << meta.size() << " bytes): " << frame.status();
  }
}

// A valid FlatBuffer whose Message has no body is not a unipool message.
TEST_F(FrameTest, MessageWithoutBodyIsInvalidArgument) {
  flatbuffers::FlatBufferBuilder fbb;
  wire::MessageBuilder message(fbb);
  fbb.Finish(message.Finish());
  ASSERT_TRUE(WriteFrame(Stream{.fd = writer_.get()}, fbb).ok());
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FrameTest, ClosedBeforeAnythingIsUnavailable) {
  writer_.Reset();
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(FrameTest, TruncatedHeaderIsUnavailable) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "x");
  uint8_t partial[7] = {0x55, 0x50, 0x46, 0x31, 0, 0, 0};
  WriteRaw(partial, sizeof partial);
  writer_.Reset();
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(FrameTest, TruncatedMetaIsUnavailable) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "a longer peer name so that the meta has some length");
  WriteHeader(kFrameMagic, fbb.GetSize(), 0);
  WriteRaw(fbb.GetBufferPointer(), fbb.GetSize() / 2);
  writer_.Reset();
  EXPECT_EQ(ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(FrameTest, TruncatedPayloadIsUnavailable) {
  flatbuffers::FlatBufferBuilder fbb;
  BuildHello(fbb, "x");
  WriteHeader(kFrameMagic, fbb.GetSize(), 1000);
  WriteRaw(fbb.GetBufferPointer(), fbb.GetSize());
  std::vector<uint8_t> half(500, 1);
  WriteRaw(half.data(), half.size());
  writer_.Reset();
  auto frame = ReadFrame(Stream{.fd = reader_.get()}, FrameLimits{});
  ASSERT_TRUE(frame.ok()) << frame.status();
  ASSERT_EQ(frame->payload_bytes, 1000u);
  std::vector<uint8_t> sink(1000);
  std::vector<std::span<uint8_t>> sinks = {sink};
  EXPECT_EQ(ReadPayload(Stream{.fd = reader_.get()}, frame->payload_bytes, sinks).code(),
            absl::StatusCode::kUnavailable);
}

// ---------------------------------------------------------------- KeyList

// Builds a Lookup message around a KeyList with the given raw parts and
// returns the verified list (the buffer lives in `fbb`).
const wire::KeyList* RawKeyList(flatbuffers::FlatBufferBuilder& fbb, std::string_view bytes,
                                const std::vector<uint32_t>& lengths) {
  auto keys = fbb.CreateVector(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto lens = fbb.CreateVector(lengths);
  auto list = wire::CreateKeyList(fbb, keys, lens);
  FinishMessage(fbb, wire::CreateLookup(fbb, list));
  flatbuffers::Verifier verifier(fbb.GetBufferPointer(), fbb.GetSize());
  EXPECT_TRUE(wire::VerifyMessageBuffer(verifier));
  return wire::GetMessage(fbb.GetBufferPointer())->body_as_Lookup()->keys();
}

TEST(KeyListTest, RoundTrip) {
  const std::vector<std::string> owned = {"a", std::string("\0\x01\xff", 3),
                                          std::string(kMaxKeyBytes, 'k'), "page/42"};
  std::vector<std::string_view> keys(owned.begin(), owned.end());
  flatbuffers::FlatBufferBuilder fbb;
  auto list = BuildKeyList(fbb, keys);
  FinishMessage(fbb, wire::CreateLookup(fbb, list));
  auto decoded = DecodeKeyList(wire::GetMessage(fbb.GetBufferPointer())->body_as_Lookup()->keys());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ((*decoded)[i], keys[i]);
}

TEST(KeyListTest, EmptyListIsAnEmptyBatch) {
  flatbuffers::FlatBufferBuilder fbb;
  auto decoded = DecodeKeyList(RawKeyList(fbb, "", {}));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->empty());
}

TEST(KeyListTest, InconsistentLengthsAreInvalidArgument) {
  struct Case {
    std::string bytes;
    std::vector<uint32_t> lengths;
  };
  const std::vector<Case> cases = {
      {"abcdef", {3, 4}},            // lengths exceed the bytes
      {"abcdef", {3, 2}},            // trailing bytes
      {"abcdef", {}},                // bytes without keys
      {"", {1}},                     // a key without bytes
      {"abcdef", {0xffffffffu, 7}},  // one huge length
      {"abcdef", {2, 0xffffffffu}},  // would wrap a 32-bit sum
      {"abcdef", {0x80000000u, 0x80000006u}},
  };
  for (const Case& c : cases) {
    flatbuffers::FlatBufferBuilder fbb;
    auto decoded = DecodeKeyList(RawKeyList(fbb, c.bytes, c.lengths));
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
        << "bytes '" << c.bytes << "' with " << c.lengths.size() << " lengths";
  }
}

TEST(KeyListTest, MissingPartsAreInvalidArgument) {
  EXPECT_EQ(DecodeKeyList(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  flatbuffers::FlatBufferBuilder fbb;
  auto lens = fbb.CreateVector(std::vector<uint32_t>{1});
  FinishMessage(fbb, wire::CreateLookup(fbb, wire::CreateKeyList(fbb, 0, lens)));
  auto decoded = DecodeKeyList(wire::GetMessage(fbb.GetBufferPointer())->body_as_Lookup()->keys());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KeyListTest, TooManyKeysAreInvalidArgument) {
  std::string bytes(kMaxBatchItems + 1, 'k');
  std::vector<uint32_t> lengths(kMaxBatchItems + 1, 1);
  flatbuffers::FlatBufferBuilder fbb;
  EXPECT_EQ(DecodeKeyList(RawKeyList(fbb, bytes, lengths)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Exactly the limit is fine.
  flatbuffers::FlatBufferBuilder at_limit;
  bytes.pop_back();
  lengths.pop_back();
  auto decoded = DecodeKeyList(RawKeyList(at_limit, bytes, lengths));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), kMaxBatchItems);
}

// protocol.h: "InvalidArgument when ... a key is empty or too long".
TEST(KeyListTest, EmptyKeyIsInvalidArgument) {
  flatbuffers::FlatBufferBuilder fbb;
  auto decoded = DecodeKeyList(RawKeyList(fbb, "abcdef", {3, 0, 3}));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
      << "decoded " << (decoded.ok() ? decoded->size() : 0) << " keys";
}

TEST(KeyListTest, OverlongKeyIsInvalidArgument) {
  std::string bytes(kMaxKeyBytes + 1, 'k');
  flatbuffers::FlatBufferBuilder fbb;
  auto decoded = DecodeKeyList(RawKeyList(fbb, bytes, {static_cast<uint32_t>(bytes.size())}));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
      << "decoded " << (decoded.ok() ? decoded->size() : 0) << " keys";
}

// ---------------------------------------------------------------- Status

TEST(WireStatusTest, RoundTripsEveryCode) {
  for (int code = 0; code <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++code) {
    absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "what happened");
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(StatusToWire(fbb, status));
    absl::Status back = StatusFromWire(flatbuffers::GetRoot<wire::Status>(fbb.GetBufferPointer()));
    EXPECT_EQ(back, status) << "code " << code;
  }
  EXPECT_TRUE(StatusFromWire(nullptr).ok());
}

TEST(WireStatusTest, CarriesARetryHint) {
  absl::Status full =
      WithRetryAfter(absl::ResourceExhaustedError("pool full for now"), absl::Milliseconds(1234));
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(StatusToWire(fbb, full));
  absl::Status back = StatusFromWire(flatbuffers::GetRoot<wire::Status>(fbb.GetBufferPointer()));
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfter(back), absl::Milliseconds(1234));
  // A status without one stays final; a hint out of bounds is clamped.
  EXPECT_EQ(RetryAfter(absl::ResourceExhaustedError("pool full")), std::nullopt);
  EXPECT_EQ(RetryAfter(WithRetryAfter(absl::UnavailableError("x"), absl::ZeroDuration())),
            absl::Milliseconds(kMinRetryAfterMs));
  EXPECT_EQ(RetryAfter(WithRetryAfter(absl::UnavailableError("x"), absl::Hours(5))),
            absl::Milliseconds(kMaxRetryAfterMs));
}

TEST(WireStatusTest, UnknownCodesBecomeUnknown) {
  for (int code : {-1, 17, 1000}) {
    flatbuffers::FlatBufferBuilder fbb;
    auto message = fbb.CreateString("from the future");
    fbb.Finish(wire::CreateStatus(fbb, code, message));
    absl::Status back = StatusFromWire(flatbuffers::GetRoot<wire::Status>(fbb.GetBufferPointer()));
    EXPECT_EQ(back.code(), absl::StatusCode::kUnknown) << "code " << code;
    EXPECT_EQ(back.message(), "from the future");
  }
}

}  // namespace
}  // namespace unipool
