// Protocol constants and the few helpers every side uses to build and read
// unipool messages (schema/unipool.fbs).
#ifndef UNIPOOL_COMMON_PROTOCOL_H_
#define UNIPOOL_COMMON_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"

namespace unipool {

// The wire protocol's version: major << 16 | minor. 0.1 (the value 1) was the
// first; 0.2 negotiates: peers of one major whose minors are one apart speak
// the older minor. A server serves a Hello one minor older than its own, and
// a client refused by a server one minor older reconnects speaking that one
// (schema/FORMATS.md), so a cluster can be upgraded one machine at a time. A
// new minor only adds to the schema (fields, messages an older peer is never
// sent); any other change is a new major.
inline constexpr uint32_t kProtocolVersion = 2;

// Whether a server speaking `ours` serves a peer whose Hello says `theirs`:
// the same major, and the same minor or the one before.
constexpr bool ServesProtocolVersion(uint32_t ours, uint32_t theirs) {
  return (ours >> 16) == (theirs >> 16) && (theirs == ours || theirs + 1 == ours);
}

// A server's refusal of our version ("... speaks version N", the text every
// version since 0.1 sends): the version to reconnect with, when we serve N
// (N is one minor older); nothing otherwise.
std::optional<uint32_t> FallbackProtocolVersion(std::string_view refusal);

// A key is arbitrary bytes: KV-page hashes and tensor names alike.
inline constexpr size_t kMaxKeyBytes = 1024;
// Items in one batch request; bigger batches are split by the client.
inline constexpr size_t kMaxBatchItems = 16384;
static_assert(kMaxBatchItems * kMaxKeyBytes <= (64u << 20) / 2,
              "a full batch of maximal keys must fit in one frame's meta");

// Encodes a status for the wire (code + message).
flatbuffers::Offset<wire::Status> StatusToWire(flatbuffers::FlatBufferBuilder& fbb,
                                               const absl::Status& status);
// Decodes; a missing status means OK. Unknown codes become Unknown.
absl::Status StatusFromWire(const wire::Status* status);

// Finishes `fbb` as a Message carrying `body`.
// With `unreachable_nodes`: the node ids a client reports it could not
// reach (Message.unreachable_nodes; none: the field is left out).
template <typename T>
void FinishMessage(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<T> body,
                   std::span<const uint32_t> unreachable_nodes = {}) {
  auto reported = unreachable_nodes.empty()
                      ? flatbuffers::Offset<flatbuffers::Vector<uint32_t>>()
                      : fbb.CreateVector(unreachable_nodes.data(), unreachable_nodes.size());
  fbb.Finish(wire::CreateMessage(fbb, wire::BodyTraits<T>::enum_value, body.Union(), reported));
}

// Builds an Error message.
void BuildError(flatbuffers::FlatBufferBuilder& fbb, const absl::Status& status);

// Keys travel as one byte vector plus lengths (cheaper to verify than a
// vector of tables).
flatbuffers::Offset<wire::KeyList> BuildKeyList(flatbuffers::FlatBufferBuilder& fbb,
                                                std::span<const std::string_view> keys);
// Splits a received KeyList; InvalidArgument when lengths do not add up, a
// key is empty or too long, or there are too many keys. The views point into
// the message buffer.
absl::StatusOr<std::vector<std::string_view>> DecodeKeyList(const wire::KeyList* list);

// Checks one key's size; the message names the key (shortened) for the user.
absl::Status ValidateKey(std::string_view key);

// A key made printable for logs and errors: at most ~64 characters,
// non-printable bytes escaped.
std::string PrintableKey(std::string_view key);

inline std::string_view AsStringView(const flatbuffers::Vector<uint8_t>* bytes) {
  if (bytes == nullptr) return {};
  return {reinterpret_cast<const char*>(bytes->data()), bytes->size()};
}
inline std::string_view AsStringView(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : s->string_view();
}

}  // namespace unipool

#endif  // UNIPOOL_COMMON_PROTOCOL_H_
