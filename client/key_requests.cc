// Exists and Remove: directory-only requests, one per chunk of keys.
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/protocol.h"

namespace unipool {

std::vector<absl::StatusOr<bool>> Client::Impl::ExistsMany(std::span<const std::string_view> keys) {
  std::vector<absl::StatusOr<bool>> results(keys.size(), false);
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    auto [asked, index] = ValidKeys(keys, begin, end, results);
    if (asked.empty()) return;
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, asked);
    FinishDirectoryRequest(fbb, wire::CreateExists(fbb, list));
    auto reply = CallDirectory(fbb);
    const wire::ExistsReply* r = reply.ok() ? reply->message()->body_as_ExistsReply() : nullptr;
    if (r == nullptr || r->exists() == nullptr || r->exists()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("Exists") : reply.status();
      for (size_t i : index) results[i] = s;
      return;
    }
    for (size_t j = 0; j < asked.size(); ++j) results[index[j]] = r->exists()->Get(j) != 0;
  });
  return results;
}

std::vector<absl::Status> Client::Impl::RemoveMany(std::span<const std::string_view> keys) {
  std::vector<absl::Status> results(keys.size());
  for (std::string_view key : keys) cache_.Erase(key);
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    auto [asked, index] = ValidKeys(keys, begin, end, results);
    if (asked.empty()) return;
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, asked);
    FinishDirectoryRequest(fbb, wire::CreateRemove(fbb, list));
    auto reply = CallDirectory(fbb);
    const wire::StatusList* statuses =
        reply.ok() ? reply->message()->body_as_StatusList() : nullptr;
    if (statuses == nullptr || statuses->items() == nullptr ||
        statuses->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("Remove") : reply.status();
      for (size_t i : index) results[i] = s;
      return;
    }
    for (size_t j = 0; j < asked.size(); ++j) {
      results[index[j]] = StatusFromWire(statuses->items()->Get(j));
    }
  });
  return results;
}

}  // namespace unipool
