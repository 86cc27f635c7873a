// Client::LookupPrefix and Client::GetPrefix: an engine's prefix hit ("how
// much of this chain of block keys is stored", then read it) with one
// directory round trip. The directory walks the keys in order and stops at
// the first it cannot serve (a Lookup with `prefix`, schema/FORMATS.md); the
// keys it found are leased, so nothing is evicted or reused between the
// lookup and the read, which goes straight to the nodes.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {

absl::StatusOr<std::vector<ObjectInfo>> Client::Impl::LookupPrefix(
    std::span<const std::string_view> keys) {
  for (std::string_view key : keys) RETURN_IF_ERROR(ValidateKey(key));
  std::vector<ObjectInfo> found;
  for (size_t begin = 0; begin < keys.size(); begin += kMaxBatchItems) {
    std::span<const std::string_view> chunk =
        keys.subspan(begin, std::min<size_t>(kMaxBatchItems, keys.size() - begin));
    absl::StatusOr<size_t> present = LookupPrefixChunk(chunk, found);
    if (!present.ok()) {
      return absl::Status(
          present.status().code(),
          absl::StrFormat("looking up the prefix from '%s' (%u keys): %s", PrintableKey(chunk[0]),
                          chunk.size(), present.status().message()));
    }
    if (*present < chunk.size()) break;
  }
  return found;
}

absl::StatusOr<size_t> Client::Impl::LookupPrefixChunk(std::span<const std::string_view> keys,
                                                       std::vector<ObjectInfo>& found) {
  flatbuffers::FlatBufferBuilder fbb;
  auto list = BuildKeyList(fbb, keys);
  FinishMessage(fbb, wire::CreateLookup(fbb, list, /*prefix=*/true));
  absl::Time sent = absl::Now();  // the lease runs from later: it ends early, never late
  ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
  const wire::LookupReply* items = reply.message()->body_as_LookupReply();
  if (items == nullptr || items->items() == nullptr || items->items()->size() > keys.size()) {
    return UnexpectedReply("Lookup");
  }
  size_t present = 0;
  for (; present < items->items()->size(); ++present) {
    const wire::LookupReplyItem* item = items->items()->Get(present);
    // A directory from before prefix lookups answers every key: the prefix
    // ends at its first miss all the same.
    if (!StatusFromWire(item->status()).ok()) break;
    ObjectInfo info = DecodeObjectInfo(item->placement(), item->replicas(), items->lease_ms());
    CacheLocation(keys[present], info, sent, items->lease_ms());
    found.push_back(std::move(info));
  }
  return present;
}

absl::StatusOr<size_t> Client::LookupPrefix(std::span<const std::string_view> keys) {
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> found, impl_->LookupPrefix(keys));
  return found.size();
}

absl::StatusOr<size_t> Client::GetPrefix(std::span<const std::string_view> keys,
                                         std::span<const std::span<uint8_t>> buffers) {
  if (buffers.size() != keys.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("GetPrefix: %u keys but %u buffers", keys.size(), buffers.size()));
  }
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> found, impl_->LookupPrefix(keys));
  std::span<const std::string_view> present = keys.first(found.size());
  std::vector<absl::StatusOr<uint64_t>> read =
      impl_->GetMany(present, Impl::IntoBuffers(present, buffers), &found);
  size_t n = 0;
  while (n < read.size() && read[n].ok()) ++n;
  // A buffer too small for a present key is the caller's error, not the end
  // of the prefix.
  if (n < read.size() && absl::IsInvalidArgument(read[n].status())) return read[n].status();
  return n;
}

}  // namespace unipool
