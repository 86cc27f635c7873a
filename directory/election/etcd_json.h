// Reading etcd's JSON gateway replies, which are untrusted: every field is
// checked for its type and range before use. int64 fields come as decimal
// strings (proto3 JSON), bytes as base64, and absent fields mean zero.
#ifndef UNIPOOL_ELECTION_ETCD_JSON_H_
#define UNIPOOL_ELECTION_ETCD_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "unipool/election/etcd_client.h"

namespace unipool::etcd_json {

// Replies larger than this are refused: a leader key's reply is a few hundred bytes.
inline constexpr size_t kMaxReplyBytes = 1 << 20;
// Keys and values we accept back (ours are far smaller).
inline constexpr size_t kMaxKeyValueBytes = 64 << 10;

// Parses a reply into a JSON object. An error reply ({"error", "code",
// "message"}) becomes a status: gRPC code 5 (NOT_FOUND) NotFound, anything
// else FailedPrecondition with etcd's message.
absl::StatusOr<nlohmann::json> ParseReply(std::string_view text);

// `object[name]` as a non-negative int64 (a decimal string or a number); 0
// when absent.
absl::StatusOr<int64_t> Int64Field(const nlohmann::json& object, const char* name);
// `object[name]` as bytes from base64; empty when absent.
absl::StatusOr<std::string> BytesField(const nlohmann::json& object, const char* name);
// `object[name]` as a JSON object; an empty object when absent.
absl::StatusOr<nlohmann::json> ObjectField(const nlohmann::json& object, const char* name);
// `object.header.revision`.
absl::StatusOr<int64_t> HeaderRevision(const nlohmann::json& object);
// One entry of a range reply's "kvs".
absl::StatusOr<EtcdKeyValue> KeyValueFrom(const nlohmann::json& kv);
// The single key of a range reply's "kvs" (at most one: we read one key).
absl::StatusOr<std::optional<EtcdKeyValue>> SingleKeyFrom(const nlohmann::json& range_reply);

std::string Base64(std::string_view bytes);

}  // namespace unipool::etcd_json

#endif  // UNIPOOL_ELECTION_ETCD_JSON_H_
