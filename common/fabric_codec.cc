#include "unipool/common/fabric_codec.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"

namespace unipool {
namespace {

absl::StatusOr<std::string> Text(const flatbuffers::String* s, const char* field) {
  if (s == nullptr) return std::string();
  if (s->size() > kMaxFabricTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("fabric report: %s over %u bytes", field, kMaxFabricTextBytes));
  }
  return s->str();
}

template <typename T>
absl::Status CheckCount(const flatbuffers::Vector<flatbuffers::Offset<T>>* v, const char* what) {
  if (v != nullptr && v->size() > kMaxFabricEntries) {
    return absl::InvalidArgumentError(
        absl::StrFormat("fabric report: %u %s (at most %u)", v->size(), what, kMaxFabricEntries));
  }
  return absl::OkStatus();
}

#define UNIPOOL_TEXT(target, source, field)                  \
  do {                                                       \
    absl::StatusOr<std::string> text_ = Text(source, field); \
    if (!text_.ok()) return text_.status();                  \
    target = *std::move(text_);                              \
  } while (false)

absl::StatusOr<RdmaPathStats> DecodePath(const wire::FabricPath& p) {
  RdmaPathStats s;
  UNIPOOL_TEXT(s.node_address, p.node_address(), "node address");
  UNIPOOL_TEXT(s.local_port, p.local_port(), "local port");
  UNIPOOL_TEXT(s.remote_port, p.remote_port(), "remote port");
  UNIPOOL_TEXT(s.mode, p.mode(), "mode");
  UNIPOOL_TEXT(s.last_error, p.last_error(), "last error");
  s.up = p.up();
  s.bytes = p.bytes();
  s.requests = p.requests();
  s.errors = p.errors();
  s.retries = p.retries();
  return s;
}

}  // namespace

flatbuffers::Offset<wire::FabricReport> EncodeFabricReport(flatbuffers::FlatBufferBuilder& fbb,
                                                           const ClientFabric& fabric) {
  std::vector<flatbuffers::Offset<wire::FabricPath>> paths;
  for (const RdmaPathStats& p : fabric.paths) {
    paths.push_back(wire::CreateFabricPath(
        fbb, fbb.CreateString(p.node_address), fbb.CreateString(p.local_port),
        fbb.CreateString(p.remote_port), fbb.CreateString(p.mode), p.up, p.bytes, p.requests,
        p.errors, p.retries, fbb.CreateString(p.last_error)));
  }
  std::vector<flatbuffers::Offset<wire::FabricFallback>> fallbacks;
  for (const TcpFallbackStats& f : fabric.fallbacks) {
    fallbacks.push_back(wire::CreateFabricFallback(fbb, fbb.CreateString(f.node_address),
                                                   fbb.CreateString(f.reason)));
  }
  auto host = fbb.CreateString(fabric.host);
  auto client = fbb.CreateString(fabric.client);
  auto path_vec = fbb.CreateVector(paths);
  auto fallback_vec = fbb.CreateVector(fallbacks);
  return wire::CreateFabricReport(
      fbb, host, client, path_vec, fallback_vec,
      static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(fabric.age))));
}

absl::StatusOr<ClientFabric> DecodeFabricReport(const wire::FabricReport* report) {
  if (report == nullptr) return absl::InvalidArgumentError("fabric report missing");
  ClientFabric fabric;
  UNIPOOL_TEXT(fabric.host, report->host(), "host");
  UNIPOOL_TEXT(fabric.client, report->client(), "client");
  fabric.age = absl::Milliseconds(std::min<uint64_t>(report->age_ms(), INT64_MAX / 2));
  if (absl::Status s = CheckCount(report->paths(), "paths"); !s.ok()) return s;
  if (absl::Status s = CheckCount(report->fallbacks(), "fallbacks"); !s.ok()) return s;
  if (report->paths() != nullptr) {
    for (const wire::FabricPath* p : *report->paths()) {
      absl::StatusOr<RdmaPathStats> path = DecodePath(*p);
      if (!path.ok()) return path.status();
      fabric.paths.push_back(*std::move(path));
    }
  }
  if (report->fallbacks() != nullptr) {
    for (const wire::FabricFallback* f : *report->fallbacks()) {
      TcpFallbackStats fallback;
      UNIPOOL_TEXT(fallback.node_address, f->node_address(), "node address");
      UNIPOOL_TEXT(fallback.reason, f->reason(), "reason");
      fabric.fallbacks.push_back(std::move(fallback));
    }
  }
  return fabric;
}

#undef UNIPOOL_TEXT

}  // namespace unipool
