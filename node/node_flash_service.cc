// NodeService: the directory's flash-tier requests (docs/flash.md).
//   FlashDemote   each slab range, checked against the checksum the
//                 directory recorded, is queued to be written to flash: a
//                 range reused meanwhile never reaches flash under that key.
//   FlashPromote  the pages are read from flash at once (ReadMany), each
//                 verified, into the slab ranges the directory reserved.
#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/node/node_service.h"
#include "unipool/pool_types.h"

namespace unipool {
namespace {

absl::Status CheckItems(const flatbuffers::Vector<flatbuffers::Offset<wire::FlashItem>>* items,
                        const NodeFlash* flash, ServerConnection& conn) {
  if (conn.payload_bytes() != 0)
    return absl::InvalidArgumentError("flash requests have no payload");
  if (flash == nullptr) return absl::FailedPreconditionError("this node has no flash tier");
  if (items == nullptr) return absl::InvalidArgumentError("flash request without items");
  if (items->size() > kMaxBatchItems) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%u pages in one flash request, over the limit of %u", items->size(), kMaxBatchItems));
  }
  return absl::OkStatus();
}

absl::Status ReplyStatuses(ServerConnection& conn, const std::vector<absl::Status>& statuses) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Status>> items;
  items.reserve(statuses.size());
  for (const absl::Status& s : statuses) items.push_back(StatusToWire(fbb, s));
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreateStatusList(fbb, vec));
  return conn.Reply(fbb);
}

}  // namespace

absl::Status NodeService::HandleFlashDemote(ServerConnection& conn,
                                            const wire::FlashDemote& request) {
  RETURN_IF_ERROR(CheckItems(request.items(), flash_, conn));
  std::vector<absl::Status> results;
  results.reserve(request.items()->size());
  std::vector<uint8_t> page;
  for (const wire::FlashItem* item : *request.items()) {
    std::string_view key = AsStringView(item->key());
    absl::StatusOr<std::span<uint8_t>> range = slab_->Range(item->offset(), item->length());
    if (!range.ok() || key.empty()) {
      results.push_back(range.ok() ? absl::InvalidArgumentError("flash page without a key")
                                   : range.status());
      continue;
    }
    // Copied first, then checked: what is checked is what is written.
    page.assign(range->begin(), range->end());
    if (Checksum(page) != item->checksum()) {
      results.push_back(absl::DataLossError(absl::StrFormat("slab range at %u no longer holds '%s'",
                                                            item->offset(), PrintableKey(key))));
      continue;
    }
    results.push_back(flash_->store().Demote(key, item->version(), page));
  }
  return ReplyStatuses(conn, results);
}

absl::Status NodeService::HandleFlashPromote(ServerConnection& conn,
                                             const wire::FlashPromote& request) {
  RETURN_IF_ERROR(CheckItems(request.items(), flash_, conn));
  size_t n = request.items()->size();
  std::vector<absl::Status> results(n);
  // Every page at once (up to 32 reads in flight): a prefix's flash half.
  std::vector<flash::FlashRead> reads;
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    const wire::FlashItem* item = request.items()->Get(i);
    absl::StatusOr<std::span<uint8_t>> range = slab_->Range(item->offset(), item->length());
    if (!range.ok()) {
      results[i] = range.status();
      continue;
    }
    reads.push_back({AsStringView(item->key()), item->version(), *range});
    which.push_back(i);
  }
  flash_->store().ReadMany(reads, flash::ReadFor::kPromotion);
  for (size_t j = 0; j < reads.size(); ++j) {
    const wire::FlashItem* item = request.items()->Get(which[j]);
    absl::StatusOr<size_t> read = reads[j].result;
    if (read.ok() && *read != item->length()) {
      read = absl::DataLossError(absl::StrFormat("flash holds %u bytes of '%s', not %u", *read,
                                                 PrintableKey(reads[j].key), item->length()));
    }
    results[which[j]] = read.status();
  }
  return ReplyStatuses(conn, results);
}

}  // namespace unipool
