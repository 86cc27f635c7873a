#include "unipool/common/protocol.h"

#include <charconv>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "unipool/common/retry_after.h"
#include "unipool/common/status_macros.h"

namespace unipool {

std::optional<uint32_t> FallbackProtocolVersion(std::string_view refusal) {
  constexpr std::string_view kSpeaks = "speaks version ";
  size_t at = refusal.rfind(kSpeaks);
  if (at == std::string_view::npos) return std::nullopt;
  uint32_t theirs = 0;
  std::string_view digits = refusal.substr(at + kSpeaks.size());
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), theirs);
  if (ec != std::errc() || end == digits.data() || theirs == kProtocolVersion ||
      !ServesProtocolVersion(kProtocolVersion, theirs)) {
    return std::nullopt;
  }
  return theirs;
}

flatbuffers::Offset<wire::Status> StatusToWire(flatbuffers::FlatBufferBuilder& fbb,
                                               const absl::Status& status) {
  if (status.ok()) return wire::CreateStatus(fbb, 0);
  auto message = fbb.CreateString(status.message().data(), status.message().size());
  std::optional<absl::Duration> retry = RetryAfter(status);
  uint32_t retry_ms =
      retry.has_value() ? static_cast<uint32_t>(absl::ToInt64Milliseconds(*retry)) : 0;
  return wire::CreateStatus(fbb, static_cast<int>(status.code()), message, retry_ms);
}

absl::Status StatusFromWire(const wire::Status* status) {
  if (status == nullptr || status->code() == 0) return absl::OkStatus();
  int code = status->code();
  if (code < 1 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int>(absl::StatusCode::kUnknown);
  }
  std::string_view message = AsStringView(status->message());
  absl::Status decoded(static_cast<absl::StatusCode>(code),
                       absl::string_view(message.data(), message.size()));
  if (status->retry_after_ms() == 0) return decoded;
  return WithRetryAfter(std::move(decoded), absl::Milliseconds(status->retry_after_ms()));
}

void BuildError(flatbuffers::FlatBufferBuilder& fbb, const absl::Status& status) {
  auto wire_status = StatusToWire(fbb, status);
  FinishMessage(fbb, wire::CreateError(fbb, wire_status));
}

flatbuffers::Offset<wire::KeyList> BuildKeyList(flatbuffers::FlatBufferBuilder& fbb,
                                                std::span<const std::string_view> keys) {
  size_t total = 0;
  for (auto key : keys) total += key.size();
  uint8_t* bytes = nullptr;
  auto bytes_offset = fbb.CreateUninitializedVector(total, &bytes);
  std::vector<uint32_t> lengths;
  lengths.reserve(keys.size());
  for (auto key : keys) {
    std::memcpy(bytes, key.data(), key.size());
    bytes += key.size();
    lengths.push_back(static_cast<uint32_t>(key.size()));
  }
  auto lengths_offset = fbb.CreateVector(lengths);
  return wire::CreateKeyList(fbb, bytes_offset, lengths_offset);
}

absl::StatusOr<std::vector<std::string_view>> DecodeKeyList(const wire::KeyList* list) {
  if (list == nullptr || list->keys() == nullptr || list->lengths() == nullptr) {
    return absl::InvalidArgumentError("key list missing");
  }
  if (list->lengths()->size() > kMaxBatchItems) {
    return absl::InvalidArgumentError(absl::StrFormat("batch of %u keys is over the limit of %u",
                                                      list->lengths()->size(), kMaxBatchItems));
  }
  std::string_view all = AsStringView(list->keys());
  std::vector<std::string_view> keys;
  keys.reserve(list->lengths()->size());
  size_t at = 0;
  for (uint32_t length : *list->lengths()) {
    if (length > all.size() - at) {
      return absl::InvalidArgumentError("key list lengths exceed its bytes");
    }
    RETURN_IF_ERROR(ValidateKey(all.substr(at, length)));
    keys.push_back(all.substr(at, length));
    at += length;
  }
  if (at != all.size()) return absl::InvalidArgumentError("key list has trailing bytes");
  return keys;
}

absl::Status ValidateKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("key '%s' is %u bytes, over the limit of %u",
                                                      PrintableKey(key), key.size(), kMaxKeyBytes));
  }
  return absl::OkStatus();
}

std::string PrintableKey(std::string_view key) {
  constexpr size_t kShown = 64;
  std::string_view head = key.substr(0, kShown);
  std::string shown = absl::CHexEscape(absl::string_view(head.data(), head.size()));
  if (key.size() > kShown) shown += "...";
  return shown;
}

}  // namespace unipool
