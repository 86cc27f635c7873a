#include "unipool/election/etcd_client.h"

#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "etcd_json.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

using nlohmann::json;

// "http://host:port" or "host:port" -> "host:port".
absl::StatusOr<std::string> EndpointAddress(std::string_view url) {
  absl::string_view rest(url.data(), url.size());
  if (absl::StartsWith(rest, "http://")) rest.remove_prefix(7);
  if (absl::StrContains(rest, "://")) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "etcd endpoint '%s': only http:// is supported (run etcd's client URLs on a private "
        "network or loopback)",
        url));
  }
  while (absl::EndsWith(rest, "/")) rest.remove_suffix(1);
  if (absl::Status s = ParseHostPort(std::string_view(rest.data(), rest.size())).status();
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("etcd endpoint '%s' is not http://HOST:PORT: %s", url, s.message()));
  }
  return std::string(rest);
}

int64_t WholeSeconds(absl::Duration d) { return std::max<int64_t>(1, absl::ToInt64Seconds(d)); }

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(std::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view entry : absl::StrSplit(absl::string_view(list.data(), list.size()), ',')) {
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("etcd endpoint list '%s' has an empty entry", list));
    }
    out.emplace_back(entry);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoint given");
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the etcd request timeout must be positive");
  }
  std::vector<std::string> addresses;
  for (const std::string& url : options.endpoints) {
    ASSIGN_OR_RETURN(std::string address, EndpointAddress(url));
    addresses.push_back(std::move(address));
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(addresses), options.request_timeout));
}

absl::StatusOr<std::string> EtcdClient::PostTo(size_t endpoint, std::string_view path,
                                               const std::string& body) {
  const std::string& address = endpoints_[endpoint];
  auto host_port = ParseHostPort(address);
  if (!host_port.ok()) return host_port.status();
  httplib::Client http(host_port->host, host_port->port);
  auto micros = absl::ToInt64Microseconds(timeout_);
  http.set_connection_timeout(micros / 1000000, micros % 1000000);
  http.set_read_timeout(micros / 1000000, micros % 1000000);
  http.set_write_timeout(micros / 1000000, micros % 1000000);
  httplib::Request request;
  request.method = "POST";
  request.path = std::string(path);
  request.body = body;
  request.set_header("Content-Type", "application/json");
  std::string reply;
  bool too_long = false;
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    too_long = reply.size() + size > etcd_json::kMaxReplyBytes;
    if (!too_long) reply.append(data, size);
    return !too_long;
  };
  httplib::Response response;
  httplib::Error error = httplib::Error::Success;
  if (!http.send(request, response, error)) {
    // The gateway sends its errors chunked with a trailer, which this
    // cpp-httplib cannot read: the body arrived whole before it failed.
    if (error == httplib::Error::Read && !reply.empty() && nlohmann::json::accept(reply)) {
      return reply;
    }
    if (too_long) {
      return absl::InternalError(absl::StrFormat("etcd at %s answered over 1 MiB", address));
    }
    return absl::UnavailableError(
        absl::StrFormat("etcd at %s: %s", address, httplib::to_string(error)));
  }
  if (response.status >= 500 && !absl::StrContains(reply, "\"error\"")) {
    return absl::UnavailableError(
        absl::StrFormat("etcd at %s answered HTTP %d", address, response.status));
  }
  return reply;
}

absl::StatusOr<std::string> EtcdClient::Post(std::string_view path, const std::string& body) {
  size_t first;
  {
    absl::MutexLock lock(&mutex_);
    first = preferred_;
  }
  absl::Status last;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    size_t endpoint = (first + i) % endpoints_.size();
    auto reply = PostTo(endpoint, path, body);
    if (reply.ok() || !absl::IsUnavailable(reply.status())) {
      absl::MutexLock lock(&mutex_);
      preferred_ = endpoint;
      return reply;
    }
    last = reply.status();
  }
  return last;
}

absl::StatusOr<EtcdClient::Lease> EtcdClient::GrantLease(absl::Duration ttl) {
  json request = {{"TTL", std::to_string(WholeSeconds(ttl))}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/lease/grant", request.dump()));
  ASSIGN_OR_RETURN(json reply, etcd_json::ParseReply(text));
  ASSIGN_OR_RETURN(int64_t id, etcd_json::Int64Field(reply, "ID"));
  ASSIGN_OR_RETURN(int64_t granted, etcd_json::Int64Field(reply, "TTL"));
  if (id == 0 || granted == 0) {
    return absl::InternalError("etcd granted a lease without an id or a TTL");
  }
  return Lease{id, absl::Seconds(granted)};
}

absl::StatusOr<absl::Duration> EtcdClient::KeepAlive(int64_t lease) {
  json request = {{"ID", std::to_string(lease)}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/lease/keepalive", request.dump()));
  // A stream of {"result": ...} lines; one request, so one answer.
  std::string_view first_line = std::string_view(text).substr(0, text.find('\n'));
  ASSIGN_OR_RETURN(json reply, etcd_json::ParseReply(first_line));
  ASSIGN_OR_RETURN(json result, etcd_json::ObjectField(reply, "result"));
  ASSIGN_OR_RETURN(int64_t id, etcd_json::Int64Field(result, "ID"));
  ASSIGN_OR_RETURN(int64_t ttl, etcd_json::Int64Field(result, "TTL"));
  if (id != lease) return absl::InternalError("etcd renewed another lease than the one asked for");
  // etcd answers a lease it no longer has with no TTL.
  if (ttl == 0) return absl::NotFoundError(absl::StrFormat("lease %d has expired", lease));
  return absl::Seconds(ttl);
}

absl::Status EtcdClient::RevokeLease(int64_t lease) {
  json request = {{"ID", std::to_string(lease)}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/lease/revoke", request.dump()));
  return etcd_json::ParseReply(text).status();
}

absl::StatusOr<EtcdGetResult> EtcdClient::Get(std::string_view key) {
  json request = {{"key", etcd_json::Base64(key)}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/range", request.dump()));
  ASSIGN_OR_RETURN(json reply, etcd_json::ParseReply(text));
  EtcdGetResult result;
  ASSIGN_OR_RETURN(result.revision, etcd_json::HeaderRevision(reply));
  ASSIGN_OR_RETURN(result.kv, etcd_json::SingleKeyFrom(reply));
  if (result.kv.has_value() && result.kv->key != key) {
    return absl::InternalError("etcd answered a read with another key");
  }
  return result;
}

absl::StatusOr<EtcdCreateResult> EtcdClient::CreateIfAbsent(std::string_view key,
                                                            std::string_view value, int64_t lease) {
  std::string k = etcd_json::Base64(key);
  json request = {
      {"compare", {{{"key", k}, {"target", "CREATE"}, {"create_revision", "0"}}}},
      {"success",
       {{{"request_put",
          {{"key", k}, {"value", etcd_json::Base64(value)}, {"lease", std::to_string(lease)}}}}}},
      {"failure", {{{"request_range", {{"key", k}}}}}}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/txn", request.dump()));
  ASSIGN_OR_RETURN(json reply, etcd_json::ParseReply(text));
  auto succeeded = reply.find("succeeded");
  if (succeeded != reply.end() && !succeeded->is_boolean()) {
    return absl::InternalError("etcd answered a transaction without a boolean 'succeeded'");
  }
  EtcdCreateResult result;
  result.created = succeeded != reply.end() && succeeded->get<bool>();
  if (result.created) {
    // The put is the transaction's only write: its revision is the key's create revision.
    ASSIGN_OR_RETURN(result.revision, etcd_json::HeaderRevision(reply));
    if (result.revision == 0) return absl::InternalError("etcd created a key at revision 0");
    return result;
  }
  auto responses = reply.find("responses");
  if (responses == reply.end() || !responses->is_array() || responses->size() != 1) {
    return absl::InternalError("etcd answered a failed create without the key's holder");
  }
  ASSIGN_OR_RETURN(json range, etcd_json::ObjectField(responses->front(), "response_range"));
  ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> holder, etcd_json::SingleKeyFrom(range));
  if (!holder.has_value() || holder->key != key) {
    return absl::InternalError("etcd refused a create but shows no holder of the key");
  }
  result.holder = std::move(*holder);
  return result;
}

absl::StatusOr<bool> EtcdClient::DeleteIfCreated(std::string_view key, int64_t create_revision) {
  std::string k = etcd_json::Base64(key);
  json request = {
      {"compare",
       {{{"key", k}, {"target", "CREATE"}, {"create_revision", std::to_string(create_revision)}}}},
      {"success", {{{"request_delete_range", {{"key", k}}}}}}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/txn", request.dump()));
  ASSIGN_OR_RETURN(json reply, etcd_json::ParseReply(text));
  auto succeeded = reply.find("succeeded");
  if (succeeded == reply.end()) return false;
  if (!succeeded->is_boolean()) {
    return absl::InternalError("etcd answered a transaction without a boolean 'succeeded'");
  }
  return succeeded->get<bool>();
}

absl::StatusOr<int64_t> EtcdClient::Delete(std::string_view key) {
  json request = {{"key", etcd_json::Base64(key)}};
  ASSIGN_OR_RETURN(std::string text, Post("/v3/kv/deleterange", request.dump()));
  ASSIGN_OR_RETURN(json reply, etcd_json::ParseReply(text));
  return etcd_json::Int64Field(reply, "deleted");
}

}  // namespace unipool
