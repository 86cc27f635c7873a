// NodeService: a client's read of pages straight from flash (FlashRead).
// A lookup answers with a page's flash copy when no memory could be
// reserved to read it back into (every evictable object leased or pinned):
// the node reads it from flash, verified by the store's checksum, and sends
// it, instead of the get missing. All the request's pages or none.
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/common/capability.h"
#include "unipool/common/frame.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/node/node_service.h"
#include "unipool/pool_types.h"

namespace unipool {
namespace {

using FlashItems = flatbuffers::Vector<flatbuffers::Offset<wire::FlashItem>>;

// What the client is told of a page the store could not serve: gone
// (NotFound) or damaged (DataLoss). Never Unavailable, which would say the
// node cannot be reached.
absl::Status PageError(std::string_view key, const absl::Status& read) {
  if (absl::IsNotFound(read) || absl::IsDataLoss(read)) return read;
  return absl::DataLossError(
      absl::StrFormat("'%s' could not be read from flash: %s", PrintableKey(key), read.message()));
}

// The request's sizes, checked before anything is allocated from them.
absl::StatusOr<uint64_t> TotalBytes(const FlashItems& items) {
  const uint64_t limit = FrameLimits().max_payload_bytes;
  uint64_t total = 0;
  for (const wire::FlashItem* item : items) {
    if (item->key() == nullptr || item->key()->size() == 0 || item->length() == 0) {
      return absl::InvalidArgumentError("FlashRead item without a key or a length");
    }
    if (item->length() > limit - total) {
      return absl::InvalidArgumentError(
          absl::StrFormat("FlashRead asks for more than the frame limit of %u bytes", limit));
    }
    total += item->length();
  }
  return total;
}

}  // namespace

absl::Status NodeService::CheckFlashReadCapabilities(
    const FlashItems& items,
    const flatbuffers::Vector<const wire::Capability*>* capabilities) const {
  if (!capability_key_.has_value()) return absl::OkStatus();
  size_t given = capabilities == nullptr ? 0 : capabilities->size();
  if (given != items.size()) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "flash read refused: every page needs a capability from the directory (%u pages, %u "
        "capabilities)",
        items.size(), given));
  }
  absl::Time now = absl::Now();
  for (size_t i = 0; i < items.size(); ++i) {
    // A FlashRead capability names the page's version as its offset.
    CapabilityUse use{.slab_id = slab_->id(),
                      .offset = items.Get(i)->version(),
                      .length = items.Get(i)->length(),
                      .access = wire::Access::FlashRead};
    RETURN_IF_ERROR(capability_key_->Check(DecodeCapability(capabilities->Get(i)), use, now));
  }
  return absl::OkStatus();
}

absl::Status NodeService::HandleFlashRead(ServerConnection& conn, const wire::FlashRead& request) {
  if (conn.payload_bytes() != 0) return absl::InvalidArgumentError("FlashRead carries no payload");
  if (flash_ == nullptr) return absl::FailedPreconditionError("this node has no flash tier");
  if (request.items() == nullptr || request.items()->size() == 0 ||
      request.items()->size() > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrFormat("FlashRead needs 1 to %u pages", kMaxBatchItems));
  }
  const FlashItems& items = *request.items();
  if (absl::Status allowed = CheckFlashReadCapabilities(items, request.capabilities());
      !allowed.ok()) {
    return Refuse(conn, wire::Body::FlashRead, allowed);
  }
  ASSIGN_OR_RETURN(uint64_t total, TotalBytes(items));
  std::vector<uint8_t> bytes(total);
  std::vector<flash::FlashRead> reads;
  reads.reserve(items.size());
  uint64_t at = 0;
  for (const wire::FlashItem* item : items) {
    reads.push_back({AsStringView(item->key()), item->version(),
                     std::span<uint8_t>(bytes).subspan(at, item->length())});
    at += item->length();
  }
  flash_->store().ReadMany(reads, flash::ReadFor::kServe);
  absl::Status failed;
  for (size_t i = 0; i < reads.size() && failed.ok(); ++i) {
    if (!reads[i].result.ok()) {
      failed = PageError(reads[i].key, reads[i].result.status());
    } else if (*reads[i].result != items.Get(i)->length()) {
      failed = absl::DataLossError(absl::StrFormat("flash holds %u bytes of '%s', not %u",
                                                   *reads[i].result, PrintableKey(reads[i].key),
                                                   items.Get(i)->length()));
    }
  }
  flatbuffers::FlatBufferBuilder fbb;
  if (!failed.ok()) {
    LogWarning("flash read for %s failed: %s", conn.peer(), failed.message());
    FinishMessage(fbb, wire::CreateError(fbb, StatusToWire(fbb, failed)));
    return conn.Reply(fbb);
  }
  FinishMessage(fbb, wire::CreateAck(fbb));
  std::vector<std::span<const uint8_t>> payload;
  payload.reserve(reads.size());
  for (const flash::FlashRead& read : reads) payload.push_back(read.dest);
  RETURN_IF_ERROR(conn.Reply(fbb, payload));
  counters_.reads.fetch_add(reads.size(), std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(total, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace unipool
