// BatchPut's stock and commit steps: items of a shape in stock take a
// pre-handed reservation (no PutStart); what was written commits, naming the
// keys of pre-handed items, and the commit asks for the next puts'
// reservations; what was not written is aborted.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "put_chunk.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"

namespace unipool {

std::vector<size_t> Client::Impl::TakeFromStock(PutChunk& chunk, const std::vector<size_t>& items) {
  std::vector<size_t> rest;
  absl::Time now = absl::Now();
  for (size_t i : items) {
    PutShape shape{chunk.values[i].size(), chunk.replicas[i]};
    std::optional<PrehandedReservation> r = stock_.Take(shape, now);
    if (!r.has_value()) {
      rest.push_back(i);
      continue;
    }
    PutChunk::Reserved put;
    put.item = i;
    put.put_id = r->put_id;
    put.version = r->version;
    put.copies = std::move(r->copies);
    put.prehanded = true;
    chunk.reserved.push_back(std::move(put));
  }
  return rest;
}

std::vector<size_t> Client::Impl::CommitOrAbort(PutChunk& chunk, bool last_attempt) {
  std::vector<uint64_t> aborted;
  std::vector<size_t> again;    // items to place again
  std::vector<size_t> written;  // indexes into chunk.reserved
  for (size_t j = 0; j < chunk.reserved.size(); ++j) {
    const PutChunk::Reserved& put = chunk.reserved[j];
    bool none_written = put.failed_nodes.size() == put.copies.size();
    if (put.changed) {
      aborted.push_back(put.put_id);  // final: its result says why
      continue;
    }
    if (put.failed_nodes.empty() || (last_attempt && !none_written)) {
      written.push_back(j);
      continue;
    }
    aborted.push_back(put.put_id);
    chunk.written_before[put.item] = static_cast<int>(put.copies.size() - put.failed_nodes.size());
    if (!last_attempt) again.push_back(put.item);
  }
  if (!aborted.empty()) Abort(aborted);
  if (!written.empty()) {
    std::vector<size_t> lost = Commit(chunk, written);
    if (!last_attempt) again.insert(again.end(), lost.begin(), lost.end());
  }
  return again;
}

void Client::Impl::Abort(const std::vector<uint64_t>& put_ids) {
  flatbuffers::FlatBufferBuilder fbb;
  auto ids = fbb.CreateVector(put_ids);
  FinishDirectoryRequest(fbb, wire::CreatePutAbort(fbb, ids, client_id_));
  (void)CallDirectory(fbb);  // best effort: reservations also expire
}

flatbuffers::Offset<wire::PutCommit> Client::Impl::BuildCommit(flatbuffers::FlatBufferBuilder& fbb,
                                                               const PutChunk& chunk,
                                                               const std::vector<size_t>& written) {
  std::vector<flatbuffers::Offset<wire::PutCommitItem>> items;
  for (size_t j : written) {
    const PutChunk::Reserved& put = chunk.reserved[j];
    auto failed = put.failed_nodes.empty() ? 0 : fbb.CreateVector(put.failed_nodes);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> key = 0;
    if (put.prehanded) {
      std::string_view k = chunk.keys[put.item];
      key = fbb.CreateVector(reinterpret_cast<const uint8_t*>(k.data()), k.size());
    }
    items.push_back(wire::CreatePutCommitItem(fbb, put.put_id, put.checksum, failed, key,
                                              put.prehanded && chunk.options.replace));
  }
  auto vec = fbb.CreateVector(items);
  std::vector<flatbuffers::Offset<wire::ReserveShape>> shapes;
  auto wanted = options_.prehanded_reservations ? stock_.Wanted(chunk.shapes)
                                                : std::vector<std::pair<PutShape, uint32_t>>{};
  for (const auto& [shape, count] : wanted) {
    shapes.push_back(
        wire::CreateReserveShape(fbb, shape.length, static_cast<uint8_t>(shape.replicas), count));
  }
  auto reserve = shapes.empty() ? 0 : fbb.CreateVector(shapes);
  return wire::CreatePutCommit(fbb, vec, client_id_, reserve);
}

std::vector<size_t> Client::Impl::Commit(PutChunk& chunk, const std::vector<size_t>& written) {
  flatbuffers::FlatBufferBuilder fbb;
  FinishDirectoryRequest(fbb, BuildCommit(fbb, chunk, written));
  bool resent = false;
  absl::Time sent = absl::Now();
  auto reply = CallDirectory(fbb, &resent);
  const wire::PutCommitReply* committed =
      reply.ok() ? reply->message()->body_as_PutCommitReply() : nullptr;
  if (committed == nullptr || committed->items() == nullptr ||
      committed->items()->size() != written.size()) {
    absl::Status s = reply.ok() ? UnexpectedReply("PutCommit") : reply.status();
    for (size_t j : written) chunk.results[chunk.reserved[j].item] = s;
    return {};
  }
  StockReservations(*committed, sent);
  std::vector<size_t> lost;  // pre-handed items to put again
  for (size_t k = 0; k < written.size(); ++k) {
    const PutChunk::Reserved& put = chunk.reserved[written[k]];
    absl::Status& result = chunk.results[put.item];
    result = StatusFromWire(committed->items()->Get(k));
    if (resent && absl::IsNotFound(result)) {
      // The directory may have committed the first send before it stopped.
      result = CommittedAfterResend(chunk.keys[put.item], put.version, result);
    }
    if (put.prehanded && absl::IsNotFound(result)) {
      // Expired, or the directory restarted since it handed the stock out:
      // the rest of the stock is no better.
      stock_.Clear();
      lost.push_back(put.item);
    }
    if (result.ok()) {
      puts_.fetch_add(1, std::memory_order_relaxed);
      bytes_put_.fetch_add(chunk.values[put.item].size(), std::memory_order_relaxed);
    }
  }
  return lost;
}

void Client::Impl::StockReservations(const wire::PutCommitReply& reply, absl::Time sent) {
  if (reply.reserved() == nullptr) return;
  // The directory's deadline runs from after `sent`; half of it is left for
  // the write and the commit of the put that uses it.
  absl::Time use_before = sent + absl::Milliseconds(reply.lease_ms()) / 2;
  for (const wire::PutStartReplyItem* item : *reply.reserved()) {
    if (!StatusFromWire(item->status()).ok()) continue;
    ObjectInfo where = DecodeObjectInfo(item->placement(), item->replicas(), /*lease_ms=*/0);
    if (where.copies.empty()) continue;
    PutShape shape{where.length, static_cast<int>(where.copies.size())};
    if (shm_io_ != nullptr && options_.prefault_reservations) {
      for (const CopyLocation& copy : where.copies) {
        shm_io_->PrepareWrite(copy.node_address, copy.offset, where.length);
      }
    }
    stock_.Add(shape, {item->put_id(), where.version, std::move(where.copies), use_before});
  }
}

absl::Status Client::Impl::CommittedAfterResend(std::string_view key, uint64_t version,
                                                absl::Status not_found) {
  std::vector<absl::StatusOr<ObjectInfo>> found = LookupMany({&key, 1});
  if (found[0].ok() && version != 0 && found[0]->version == version) return absl::OkStatus();
  return not_found;
}

}  // namespace unipool
