#include "etcd_json.h"

#include <charconv>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace unipool::etcd_json {
namespace {

absl::Status Malformed(std::string_view what) {
  return absl::InternalError(absl::StrFormat("etcd answered a malformed reply: %s", what));
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseReply(std::string_view text) {
  if (text.size() > kMaxReplyBytes) return Malformed("over 1 MiB");
  nlohmann::json reply = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object()) return Malformed("not a JSON object");
  auto error = reply.find("error");
  if (error == reply.end()) return reply;
  // The gateway's error shape: {"error": "...", "message": "...", "code": N}.
  auto code = reply.find("code");
  auto message = reply.find("message");
  std::string text_of_error = message != reply.end() && message->is_string()
                                  ? message->get<std::string>()
                                  : (error->is_string() ? error->get<std::string>() : "an error");
  if (text_of_error.size() > 512) text_of_error.resize(512);
  if (code != reply.end() && code->is_number_integer() && code->get<int64_t>() == 5) {
    return absl::NotFoundError("etcd: " + text_of_error);
  }
  return absl::FailedPreconditionError("etcd refused the request: " + text_of_error);
}

absl::StatusOr<int64_t> Int64Field(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return 0;
  int64_t value = -1;
  if (it->is_number_unsigned() || it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX)
      value = -1;
    else
      value = it->get<int64_t>();
  } else if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) value = -1;
  }
  if (value < 0) return Malformed(absl::StrFormat("'%s' is not a non-negative int64", name));
  return value;
}

absl::StatusOr<std::string> BytesField(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Malformed(absl::StrFormat("'%s' is not a string", name));
  const std::string& encoded = it->get_ref<const std::string&>();
  if (encoded.size() > kMaxKeyValueBytes * 4 / 3 + 4) {
    return Malformed(absl::StrFormat("'%s' is too long", name));
  }
  std::string bytes;
  if (!absl::Base64Unescape(encoded, &bytes)) {
    return Malformed(absl::StrFormat("'%s' is not base64", name));
  }
  return bytes;
}

absl::StatusOr<nlohmann::json> ObjectField(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nlohmann::json::object();
  if (!it->is_object()) return Malformed(absl::StrFormat("'%s' is not an object", name));
  return *it;
}

absl::StatusOr<int64_t> HeaderRevision(const nlohmann::json& object) {
  auto header = ObjectField(object, "header");
  if (!header.ok()) return header.status();
  return Int64Field(*header, "revision");
}

absl::StatusOr<EtcdKeyValue> KeyValueFrom(const nlohmann::json& kv) {
  if (!kv.is_object()) return Malformed("a key-value is not an object");
  EtcdKeyValue out;
  auto key = BytesField(kv, "key");
  auto value = BytesField(kv, "value");
  auto created = Int64Field(kv, "create_revision");
  auto modified = Int64Field(kv, "mod_revision");
  auto lease = Int64Field(kv, "lease");
  for (const absl::Status& s :
       {key.status(), value.status(), created.status(), modified.status(), lease.status()}) {
    if (!s.ok()) return s;
  }
  if (key->empty() || *created == 0) return Malformed("a key-value without key or create revision");
  out.key = std::move(*key);
  out.value = std::move(*value);
  out.create_revision = *created;
  out.mod_revision = *modified;
  out.lease = *lease;
  return out;
}

absl::StatusOr<std::optional<EtcdKeyValue>> SingleKeyFrom(const nlohmann::json& range_reply) {
  auto kvs = range_reply.find("kvs");
  if (kvs == range_reply.end() || kvs->is_null()) return std::optional<EtcdKeyValue>();
  if (!kvs->is_array() || kvs->size() > 1) return Malformed("'kvs' is not a list of one key");
  if (kvs->empty()) return std::optional<EtcdKeyValue>();
  auto kv = KeyValueFrom(kvs->front());
  if (!kv.ok()) return kv.status();
  return std::optional<EtcdKeyValue>(std::move(*kv));
}

std::string Base64(std::string_view bytes) {
  return absl::Base64Escape(absl::string_view(bytes.data(), bytes.size()));
}

}  // namespace unipool::etcd_json
