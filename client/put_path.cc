// BatchPut, in three steps per chunk of keys: reserve space for every item
// (PutStart), write every copy's bytes to its node, then commit what was
// written (PutCommit, with the checksum) and abort what was not (PutAbort).
// An item a node could not take (unreachable, failed write) is aborted and
// placed again, away from that node (reported to the directory with the next
// PutStart, which then probes it), up to kPutAttempts times.
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/checksum.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"

namespace unipool {
namespace {

// Placements per item: a node lost mid-put costs one more, a second node
// lost at the same time another.
constexpr int kPutAttempts = 3;

}  // namespace

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
  // Per key index: the copies to ask for, and how many were written by an
  // attempt that was aborted to place the item again. When too few nodes
  // are left to place it again whole, it is placed with that many copies
  // (what the first attempt could have committed).
  std::vector<int> replicas;
  std::vector<int> written_before;
  std::vector<size_t> fewer;  // items Reserve asks to try with fewer copies
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
    chunk.replicas.assign(keys.size(), options.replicas);
    chunk.written_before.assign(keys.size(), 0);
    std::vector<size_t> items = PutItems(chunk, begin, end);
    for (int attempt = 0; attempt < kPutAttempts && !items.empty(); ++attempt) {
      if (attempt > 0) put_replacements_.fetch_add(items.size(), std::memory_order_relaxed);
      chunk.reserved.clear();
      chunk.fewer.clear();
      Reserve(chunk, items, options);
      WriteCopies(chunk);
      items = CommitOrAbort(chunk, attempt + 1 == kPutAttempts);
      items.insert(items.end(), chunk.fewer.begin(), chunk.fewer.end());
    }
  });
  return results;
}

std::vector<size_t> Client::Impl::PutItems(PutChunk& chunk, size_t begin, size_t end) {
  std::vector<size_t> items;
  for (size_t i = begin; i < end; ++i) {
    if (absl::Status s = ValidateKey(chunk.keys[i]); !s.ok()) {
      chunk.results[i] = s;
    } else if (chunk.values[i].empty()) {
      chunk.results[i] = absl::InvalidArgumentError(
          absl::StrFormat("empty value for key '%s'", PrintableKey(chunk.keys[i])));
    } else {
      items.push_back(i);
    }
  }
  return items;
}

void Client::Impl::Reserve(PutChunk& chunk, const std::vector<size_t>& asked,
                           const PutOptions& options) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutStartItem>> items;
  for (size_t i : asked) {
    std::string_view key = chunk.keys[i];
    auto k = fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    items.push_back(wire::CreatePutStartItem(fbb, k, chunk.values[i].size(), options.replace,
                                             static_cast<uint8_t>(chunk.replicas[i])));
  }
  auto vec = fbb.CreateVector(items);
  FinishDirectoryRequest(fbb, wire::CreatePutStart(fbb, vec));
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
      if (absl::IsUnavailable(s) && chunk.written_before[i] > 0 &&
          chunk.written_before[i] < chunk.replicas[i]) {
        chunk.replicas[i] = chunk.written_before[i];  // too few nodes now
        chunk.fewer.push_back(i);
      }
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
  // Named references, not structured bindings: lambdas may not capture
  // bindings before C++20's clang 16 (Debian 12 has clang 14).
  for (const auto& node_entry : by_node) {
    const std::string& address = node_entry.first;
    const std::vector<size_t>& node_writes = node_entry.second;
    ForEachNodeRequest(node_writes, lengths, [&](size_t first, size_t last) {
      std::vector<WriteOp> ops;
      for (size_t k = first; k < last; ++k) {
        const CopyWrite& w = writes[node_writes[k]];
        ops.push_back({w.copy->offset, chunk.values[w.put->item], w.put->checksum});
      }
      absl::Status written = WriteToNode(address, ops);
      if (written.ok()) return;
      NoteUnreachable(writes[node_writes[first]].copy->node_id, written);
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

std::vector<size_t> Client::Impl::CommitOrAbort(PutChunk& chunk, bool last_attempt) {
  std::vector<uint64_t> aborted;
  std::vector<size_t> again;    // items to place again
  std::vector<size_t> written;  // indexes into chunk.reserved
  for (size_t j = 0; j < chunk.reserved.size(); ++j) {
    const PutChunk::Reserved& put = chunk.reserved[j];
    bool none_written = put.failed_nodes.size() == put.copies.size();
    if (put.failed_nodes.empty() || (last_attempt && !none_written)) {
      written.push_back(j);
      continue;
    }
    aborted.push_back(put.put_id);
    chunk.written_before[put.item] = static_cast<int>(put.copies.size() - put.failed_nodes.size());
    if (!last_attempt) again.push_back(put.item);
  }
  if (!aborted.empty()) {
    flatbuffers::FlatBufferBuilder fbb;
    auto ids = fbb.CreateVector(aborted);
    FinishDirectoryRequest(fbb, wire::CreatePutAbort(fbb, ids));
    (void)CallDirectory(fbb);  // best effort: reservations also expire
  }
  if (!written.empty()) Commit(chunk, written);
  return again;
}

void Client::Impl::Commit(PutChunk& chunk, const std::vector<size_t>& written) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutCommitItem>> items;
  for (size_t j : written) {
    const PutChunk::Reserved& put = chunk.reserved[j];
    auto failed = put.failed_nodes.empty() ? 0 : fbb.CreateVector(put.failed_nodes);
    items.push_back(wire::CreatePutCommitItem(fbb, put.put_id, put.checksum, failed));
  }
  auto vec = fbb.CreateVector(items);
  FinishDirectoryRequest(fbb, wire::CreatePutCommit(fbb, vec));
  bool resent = false;
  auto reply = CallDirectory(fbb, &resent);
  const wire::StatusList* statuses = reply.ok() ? reply->message()->body_as_StatusList() : nullptr;
  if (statuses == nullptr || statuses->items() == nullptr ||
      statuses->items()->size() != written.size()) {
    absl::Status s = reply.ok() ? UnexpectedReply("PutCommit") : reply.status();
    for (size_t j : written) chunk.results[chunk.reserved[j].item] = s;
    return;
  }
  for (size_t k = 0; k < written.size(); ++k) {
    const PutChunk::Reserved& put = chunk.reserved[written[k]];
    absl::Status& result = chunk.results[put.item];
    result = StatusFromWire(statuses->items()->Get(k));
    if (resent && absl::IsNotFound(result)) {
      // The directory may have committed the first send before it stopped.
      result = CommittedAfterResend(chunk.keys[put.item], put.put_id, result);
    }
    if (result.ok()) {
      puts_.fetch_add(1, std::memory_order_relaxed);
      bytes_put_.fetch_add(chunk.values[put.item].size(), std::memory_order_relaxed);
    }
  }
}

absl::Status Client::Impl::CommittedAfterResend(std::string_view key, uint64_t put_id,
                                                absl::Status not_found) {
  std::vector<absl::StatusOr<ObjectInfo>> found = LookupMany({&key, 1});
  if (found[0].ok() && found[0]->version == put_id) return absl::OkStatus();
  return not_found;
}

}  // namespace unipool
