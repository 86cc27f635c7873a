// BatchPut, in three steps per chunk of keys: reserve space for every item
// (PutStart), write every copy's bytes to its node, then commit what was
// written (PutCommit, with the checksum) and abort what was not (PutAbort).
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/checksum.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"

namespace unipool {

// One chunk of a BatchPut as it goes through the steps.
struct Client::Impl::PutChunk {
  // An item the directory reserved space for.
  struct Reserved {
    size_t item = 0;  // index into keys, values and results
    uint64_t put_id = 0;
    uint64_t checksum = 0;
    std::vector<CopyLocation> copies;  // where to write
    std::vector<NodeId> failed_nodes;  // copies whose write failed
  };
  std::span<const std::string_view> keys;
  std::span<const std::span<const uint8_t>> values;
  std::vector<absl::Status>& results;
  std::vector<Reserved> reserved;  // in item order
};

std::vector<absl::Status> Client::Impl::BatchPut(std::span<const std::string_view> keys,
                                                 std::span<const std::span<const uint8_t>> values,
                                                 const PutOptions& options) {
  std::vector<absl::Status> results(keys.size());
  if (keys.size() != values.size()) {
    results.assign(keys.size(),
                   absl::InvalidArgumentError("BatchPut: keys and values differ in count"));
    return results;
  }
  if (options.replicas < 1 || options.replicas > kMaxReplicas) {
    results.assign(keys.size(), absl::InvalidArgumentError(absl::StrFormat(
                                    "BatchPut: %d replicas asked; 1 to %d are possible",
                                    options.replicas, kMaxReplicas)));
    return results;
  }
  // A replaced key's cached location would serve the old bytes.
  if (options.replace) {
    for (std::string_view key : keys) cache_.Erase(key);
  }
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    PutChunk chunk{keys, values, results, {}};
    Reserve(chunk, begin, end, options);
    WriteCopies(chunk);
    CommitOrAbort(chunk);
  });
  return results;
}

void Client::Impl::Reserve(PutChunk& chunk, size_t begin, size_t end, const PutOptions& options) {
  std::vector<size_t> asked;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutStartItem>> items;
  for (size_t i = begin; i < end; ++i) {
    std::string_view key = chunk.keys[i];
    if (absl::Status s = ValidateKey(key); !s.ok()) {
      chunk.results[i] = s;
      continue;
    }
    if (chunk.values[i].empty()) {
      chunk.results[i] = absl::InvalidArgumentError(
          absl::StrFormat("empty value for key '%s'", PrintableKey(key)));
      continue;
    }
    auto k = fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    items.push_back(wire::CreatePutStartItem(fbb, k, chunk.values[i].size(), options.replace,
                                             static_cast<uint8_t>(options.replicas)));
    asked.push_back(i);
  }
  if (asked.empty()) return;
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreatePutStart(fbb, vec));
  auto reply = CallDirectory(fbb);
  const wire::PutStartReply* started =
      reply.ok() ? reply->message()->body_as_PutStartReply() : nullptr;
  if (started == nullptr || started->items() == nullptr ||
      started->items()->size() != asked.size()) {
    absl::Status s = reply.ok() ? UnexpectedReply("PutStart") : reply.status();
    for (size_t i : asked) chunk.results[i] = s;
    return;
  }
  for (size_t j = 0; j < asked.size(); ++j) {
    size_t i = asked[j];
    const wire::PutStartReplyItem* item = started->items()->Get(j);
    if (absl::Status s = StatusFromWire(item->status()); !s.ok()) {
      chunk.results[i] = s;
      continue;
    }
    ObjectInfo where = DecodeObjectInfo(item->placement(), item->replicas(), /*lease_ms=*/0);
    if (where.copies.empty()) {
      chunk.results[i] = UnexpectedReply("PutStart");  // a reservation with nowhere to write
      continue;
    }
    chunk.reserved.push_back(
        {i, item->put_id(), Checksum(chunk.values[i]), std::move(where.copies), {}});
  }
}

void Client::Impl::WriteCopies(PutChunk& chunk) {
  // A write is one (reserved item, copy) pair, grouped by node.
  struct CopyWrite {
    PutChunk::Reserved* put;
    const CopyLocation* copy;
  };
  std::vector<CopyWrite> writes;
  std::vector<uint64_t> lengths;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_node;  // address -> writes
  for (PutChunk::Reserved& put : chunk.reserved) {
    for (const CopyLocation& copy : put.copies) {
      by_node[copy.node_address].push_back(writes.size());
      writes.push_back({&put, &copy});
      lengths.push_back(chunk.values[put.item].size());
    }
  }
  for (const auto& [address, node_writes] : by_node) {
    ForEachNodeRequest(node_writes, lengths, [&](size_t first, size_t last) {
      std::vector<WriteOp> ops;
      for (size_t k = first; k < last; ++k) {
        const CopyWrite& w = writes[node_writes[k]];
        ops.push_back({w.copy->offset, chunk.values[w.put->item], w.put->checksum});
      }
      absl::Status written = WriteToNode(address, ops);
      if (written.ok()) return;
      for (size_t k = first; k < last; ++k) {
        const CopyWrite& w = writes[node_writes[k]];
        w.put->failed_nodes.push_back(w.copy->node_id);
        chunk.results[w.put->item] =
            absl::Status(written.code(), absl::StrFormat("writing '%s' to node %s: %s",
                                                         PrintableKey(chunk.keys[w.put->item]),
                                                         address, written.message()));
      }
    });
  }
}

void Client::Impl::CommitOrAbort(PutChunk& chunk) {
  // An item with at least one copy written commits (without the copies that
  // failed); one with none is aborted.
  std::vector<uint64_t> aborted;
  std::vector<const PutChunk::Reserved*> written;
  for (const PutChunk::Reserved& put : chunk.reserved) {
    if (put.failed_nodes.size() == put.copies.size()) {
      aborted.push_back(put.put_id);
    } else {
      written.push_back(&put);
    }
  }
  if (!aborted.empty()) {
    flatbuffers::FlatBufferBuilder fbb;
    auto ids = fbb.CreateVector(aborted);
    FinishMessage(fbb, wire::CreatePutAbort(fbb, ids));
    (void)CallDirectory(fbb);  // best effort: reservations also expire
  }
  if (written.empty()) return;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutCommitItem>> items;
  for (const PutChunk::Reserved* put : written) {
    auto failed = put->failed_nodes.empty() ? 0 : fbb.CreateVector(put->failed_nodes);
    items.push_back(wire::CreatePutCommitItem(fbb, put->put_id, put->checksum, failed));
  }
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreatePutCommit(fbb, vec));
  auto reply = CallDirectory(fbb);
  const wire::StatusList* statuses = reply.ok() ? reply->message()->body_as_StatusList() : nullptr;
  if (statuses == nullptr || statuses->items() == nullptr ||
      statuses->items()->size() != written.size()) {
    absl::Status s = reply.ok() ? UnexpectedReply("PutCommit") : reply.status();
    for (const PutChunk::Reserved* put : written) chunk.results[put->item] = s;
    return;
  }
  for (size_t j = 0; j < written.size(); ++j) {
    size_t i = written[j]->item;
    chunk.results[i] = StatusFromWire(statuses->items()->Get(j));
    if (chunk.results[i].ok()) {
      puts_.fetch_add(1, std::memory_order_relaxed);
      bytes_put_.fetch_add(chunk.values[i].size(), std::memory_order_relaxed);
    }
  }
}

}  // namespace unipool
