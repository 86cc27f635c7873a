// BatchPut, in three steps per chunk of keys: reserve space for every item
// (a pre-handed reservation from the stock, else PutStart), write every
// copy's bytes to its node, then commit what was written (PutCommit, with
// the checksum, asking for the next puts' reservations) and abort what was
// not (PutAbort); put_commit.cc has the last step. An item a node could not
// take (unreachable, failed write) is aborted and placed again, away from
// that node (reported to the directory with the next PutStart, which then
// probes it), up to kPutAttempts times. An item the pool has no room for
// yet (the directory's answer carries a retry hint: leases or held memory
// will free some) waits and is reserved again, within the client's
// pool_full_wait (pool_full_wait.h).
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "pool_full_wait.h"
#include "put_chunk.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/retry_after.h"

namespace unipool {
namespace {

// Placements per item: a node lost mid-put costs one more, a second node
// lost at the same time another.
constexpr int kPutAttempts = 3;

}  // namespace

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
    PutChunk chunk{keys, values, results, options};
    chunk.replicas.assign(keys.size(), options.replicas);
    chunk.written_before.assign(keys.size(), 0);
    std::vector<size_t> items = PutItems(chunk, begin, end);
    for (size_t i : items) ++chunk.shapes[{values[i].size(), options.replicas}];
    PoolFullWait wait(options_.pool_full_wait);
    size_t waited_items = 0;
    while (true) {
      PutAttempts(chunk, std::move(items));
      if (chunk.waiting.empty() || !wait.Sleep(chunk.wait_hint)) break;
      waited_items += chunk.waiting.size();
      items = std::move(chunk.waiting);
      chunk.waiting.clear();
      chunk.wait_hint = absl::InfiniteDuration();
    }
    if (wait.rounds() > 0) ReportPoolFullWait(chunk, waited_items, wait, end - begin);
  });
  return results;
}

void Client::Impl::PutAttempts(PutChunk& chunk, std::vector<size_t> items) {
  for (int attempt = 0; attempt < kPutAttempts && !items.empty(); ++attempt) {
    if (attempt > 0) put_replacements_.fetch_add(items.size(), std::memory_order_relaxed);
    chunk.reserved.clear();
    chunk.fewer.clear();
    // Placed again (attempt > 0): away from the nodes that failed, so
    // through PutStart, which hears of them.
    std::vector<size_t> to_start = attempt == 0 ? TakeFromStock(chunk, items) : items;
    if (!to_start.empty()) Reserve(chunk, to_start);
    WriteCopies(chunk);
    items = CommitOrAbort(chunk, attempt + 1 == kPutAttempts);
    items.insert(items.end(), chunk.fewer.begin(), chunk.fewer.end());
  }
}

void Client::Impl::ReportPoolFullWait(const PutChunk& chunk, size_t waited_items,
                                      const PoolFullWait& wait, size_t batch) {
  size_t refused = chunk.waiting.size();
  pool_full_waits_.fetch_add(waited_items, std::memory_order_relaxed);
  pool_full_wait_ms_.fetch_add(absl::ToInt64Milliseconds(wait.waited()), std::memory_order_relaxed);
  LogInfo("put of %u item%s waited %s for room in a full pool (%d round%s, %u item-waits)%s", batch,
          batch == 1 ? "" : "s", absl::FormatDuration(wait.waited()), wait.rounds(),
          wait.rounds() == 1 ? "" : "s", waited_items,
          refused == 0 ? "" : absl::StrFormat(": %u still had no room", refused));
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

void Client::Impl::Reserve(PutChunk& chunk, const std::vector<size_t>& asked) {
  const PutOptions& options = chunk.options;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::PutStartItem>> items;
  for (size_t i : asked) {
    std::string_view key = chunk.keys[i];
    auto k = fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    items.push_back(wire::CreatePutStartItem(fbb, k, chunk.values[i].size(), options.replace,
                                             static_cast<uint8_t>(chunk.replicas[i])));
  }
  auto vec = fbb.CreateVector(items);
  FinishDirectoryRequest(fbb, wire::CreatePutStart(fbb, vec, client_id_));
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
      std::optional<absl::Duration> hint = RetryAfter(s);
      if (absl::IsResourceExhausted(s) && hint.has_value()) {
        chunk.waiting.push_back(i);  // no room yet: it keeps this error unless it gets some
        chunk.wait_hint = std::min(chunk.wait_hint, *hint);
        continue;
      }
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
    chunk.reserved.push_back({i, item->put_id(), where.version, 0, std::move(where.copies)});
  }
}

void Client::Impl::WriteCopies(PutChunk& chunk) {
  // A transport that copies the bytes hashes them as it goes; for the others
  // (RDMA: the NIC moves them) they are hashed first.
  const bool hash_while_writing = node_io_->HashesWhileWriting();
  if (!hash_while_writing) {
    for (PutChunk::Reserved& put : chunk.reserved) {
      put.checksum = Checksum(chunk.values[put.item]);
      put.hashed = true;
    }
  }
  // A write is one (reserved item, copy) pair, grouped by node.
  std::vector<CopyWrite> writes;
  std::vector<uint64_t> lengths;
  uint64_t bytes = 0;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_node;  // address -> writes
  for (PutChunk::Reserved& put : chunk.reserved) {
    for (const CopyLocation& copy : put.copies) {
      by_node[copy.node_address].push_back(writes.size());
      writes.push_back({&put, &copy});
      lengths.push_back(chunk.values[put.item].size());
      bytes += lengths.back();
    }
  }
  std::vector<NodeWrite> requests;
  // Named references, not structured bindings: lambdas may not capture
  // bindings before C++20's clang 16 (Debian 12 has clang 14).
  for (const auto& node_entry : by_node) {
    const std::string& address = node_entry.first;
    const std::vector<size_t>& node_writes = node_entry.second;
    ForEachNodeRequest(node_writes, lengths, [&](size_t first, size_t last) {
      requests.push_back(
          {address, std::vector<size_t>(node_writes.begin() + first, node_writes.begin() + last)});
    });
  }
  // Several nodes' requests are in flight at once, as in ReadCopies.
  RunConcurrently(requests.size(), bytes, [&](size_t r) {
    WriteToOneNode(chunk, writes, requests[r], hash_while_writing);
  });
  for (const CopyWrite& w : writes) SettleWrite(chunk, w);
}

void Client::Impl::WriteToOneNode(PutChunk& chunk, std::vector<CopyWrite>& writes,
                                  const NodeWrite& request, bool hash_while_writing) {
  std::vector<WriteOp> ops;
  for (size_t k : request.writes) {
    CopyWrite& w = writes[k];
    ops.push_back({w.copy->offset, chunk.values[w.put->item], w.put->checksum,
                   hash_while_writing ? &w.hash : nullptr, &w.copy->capability});
  }
  absl::Status written = WriteToNode(request.address, ops);
  if (written.ok()) return;
  NoteUnreachable(writes[request.writes.front()].copy->node_id, written);
  for (size_t k : request.writes) writes[k].status = written;
}

void Client::Impl::SettleWrite(PutChunk& chunk, const CopyWrite& w) {
  PutChunk::Reserved& put = *w.put;
  std::string_view key = chunk.keys[put.item];
  if (!w.status.ok()) {
    put.failed_nodes.push_back(w.copy->node_id);
    chunk.results[put.item] = absl::Status(
        w.status.code(), absl::StrFormat("writing '%s' to node %s: %s", PrintableKey(key),
                                         w.copy->node_address, w.status.message()));
    return;
  }
  if (!put.hashed) {
    put.checksum = w.hash;
    put.hashed = true;
  } else if (put.checksum != w.hash && node_io_->HashesWhileWriting()) {
    // Two copies of one value differ: the caller changed the bytes while
    // they were being put. Committing would store a copy that fails its
    // checksum on every read.
    put.changed = true;
    chunk.results[put.item] = absl::FailedPreconditionError(absl::StrFormat(
        "the bytes of '%s' changed while they were being put: not stored", PrintableKey(key)));
  }
}

}  // namespace unipool
