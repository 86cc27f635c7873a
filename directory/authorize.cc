#include "authorize.h"

#include <functional>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/tensor/records.h"

namespace unipool {
namespace {

std::string RoleName(wire::Role role) { return absl::AsciiStrToLower(wire::EnumNameRole(role)); }

absl::Status Denied(const Principal& who, const wire::Message& request, std::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrFormat("%s refused: %s (this connection holds a %s token%s)",
                      wire::EnumNameBody(request.body_type()), why, RoleName(who.role),
                      who.prefix.empty() ? "" : " for '" + PrintableKey(who.prefix) + "'"));
}

// A stripe key is within the prefix when its owner (the tensor's or model's
// name) is: a tenant reaches its own tensors' stripes and no one else's.
bool Within(const Principal& who, std::string_view key) {
  std::string_view scoped = StripeKeyScope(key).value_or(key);
  return scoped.substr(0, who.prefix.size()) == who.prefix;
}

// The tensor and model names of a tensor request (tensor_service.cc).
absl::Status CheckTensorNames(const wire::Message& request,
                              const std::function<absl::Status(std::string_view)>& check) {
  switch (request.body_type()) {
    case wire::Body::TensorPublish: {
      const wire::TensorPublish* publish = request.body_as_TensorPublish();
      if (publish->tensors()) {
        for (const wire::TensorRecord* t : *publish->tensors()) {
          RETURN_IF_ERROR(check(AsStringView(t->name())));
        }
      }
      return publish->model() ? check(AsStringView(publish->model()->name())) : absl::OkStatus();
    }
    case wire::Body::TensorLookup:
      return check(AsStringView(request.body_as_TensorLookup()->name()));
    case wire::Body::TensorList:
      return check(AsStringView(request.body_as_TensorList()->prefix()));
    case wire::Body::TensorRemove:
      return check(AsStringView(request.body_as_TensorRemove()->name()));
    case wire::Body::ModelPin:
      return check(AsStringView(request.body_as_ModelPin()->name()));
    default:
      return absl::OkStatus();
  }
}

// The keys a client request names, checked against the token's prefix.
absl::Status CheckKeys(const Principal& who, const wire::Message& request) {
  auto check = [&](std::string_view key) -> absl::Status {
    if (Within(who, key)) return absl::OkStatus();
    return Denied(who, request,
                  absl::StrFormat("key '%s' is outside the token's prefix", PrintableKey(key)));
  };
  const wire::KeyList* list = nullptr;
  switch (request.body_type()) {
    case wire::Body::PutStart:
      if (const auto* items = request.body_as_PutStart()->items()) {
        for (const auto* item : *items) {
          if (absl::Status s = check(AsStringView(item->key())); !s.ok()) return s;
        }
      }
      return absl::OkStatus();
    case wire::Body::PutCommit:  // the keys named for pre-handed reservations
      if (const auto* items = request.body_as_PutCommit()->items()) {
        for (const auto* item : *items) {
          if (item->key() == nullptr) continue;
          if (absl::Status s = check(AsStringView(item->key())); !s.ok()) return s;
        }
      }
      return absl::OkStatus();
    case wire::Body::Lookup:
      list = request.body_as_Lookup()->keys();
      break;
    case wire::Body::Exists:
      list = request.body_as_Exists()->keys();
      break;
    case wire::Body::Remove:
      list = request.body_as_Remove()->keys();
      break;
    case wire::Body::List:
      return check(AsStringView(request.body_as_List()->prefix()));
    case wire::Body::Pin:
      if (request.body_as_Pin()->prefix() && who.role != wire::Role::Admin) {
        return Denied(who, request, "only admins pin or unpin by prefix");
      }
      return check(AsStringView(request.body_as_Pin()->key()));
    case wire::Body::Evict:  // an empty prefix (evict --all) is outside every tenant's
      return check(AsStringView(request.body_as_Evict()->prefix()));
    default:
      return CheckTensorNames(request, check);
  }
  auto keys = DecodeKeyList(list);
  if (!keys.ok()) return keys.status();
  for (std::string_view key : *keys) {
    if (absl::Status s = check(key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AuthorizeDirectoryRequest(const Principal& who, const wire::Message& request) {
  if (!who.authenticated || who.cluster_key) return absl::OkStatus();
  wire::Body body = request.body_type();
  bool node_message = body == wire::Body::RegisterNode || body == wire::Body::Heartbeat ||
                      body == wire::Body::FlashAnnounce;
  if (node_message != (who.role == wire::Role::Node)) {
    return Denied(who, request,
                  node_message ? "only nodes register and send heartbeats"
                               : "a node token serves only registration and heartbeats");
  }
  if (who.role == wire::Role::Node) {
    // A node holds every tenant's objects: it cannot belong to one.
    if (!who.prefix.empty()) {
      return Denied(who, request, "a node token must have no prefix (make one without --prefix)");
    }
    return absl::OkStatus();
  }
  if (who.role == wire::Role::Client && (body == wire::Body::Drain || body == wire::Body::Evict)) {
    return Denied(who, request, "only admins drain, undrain or evict");
  }
  if (who.role == wire::Role::Admin && who.prefix.empty()) return absl::OkStatus();  // whole pool
  if (body == wire::Body::StepDown) {
    return Denied(who, request, "only an admin without a prefix hands the leadership over");
  }
  if (body == wire::Body::Drain) {
    // A node holds every tenant's objects: draining it is the whole pool's business.
    return Denied(who, request, "only an admin without a prefix drains or undrains nodes");
  }
  return CheckKeys(who, request);
}

}  // namespace unipool
