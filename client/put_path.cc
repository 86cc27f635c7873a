// BatchPut: reserve space for every item (PutStart), write every copy's
// bytes to its node, then commit what was written (PutCommit, with the
// checksum) and abort the rest (PutAbort).
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/checksum.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"

namespace unipool {

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
    // 1. Reserve space for every valid item.
    std::vector<size_t> asked;
    flatbuffers::FlatBufferBuilder start;
    std::vector<flatbuffers::Offset<wire::PutStartItem>> items;
    for (size_t i = begin; i < end; ++i) {
      if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
        results[i] = s;
        continue;
      }
      if (values[i].empty()) {
        results[i] = absl::InvalidArgumentError(
            absl::StrFormat("empty value for key '%s'", PrintableKey(keys[i])));
        continue;
      }
      auto key =
          start.CreateVector(reinterpret_cast<const uint8_t*>(keys[i].data()), keys[i].size());
      items.push_back(wire::CreatePutStartItem(start, key, values[i].size(), options.replace,
                                               static_cast<uint8_t>(options.replicas)));
      asked.push_back(i);
    }
    if (asked.empty()) return;
    auto vec = start.CreateVector(items);
    FinishMessage(start, wire::CreatePutStart(start, vec));
    auto reply = CallDirectory(start);
    const wire::PutStartReply* started =
        reply.ok() ? reply->message()->body_as_PutStartReply() : nullptr;
    if (started == nullptr || started->items() == nullptr ||
        started->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("PutStart") : reply.status();
      for (size_t i : asked) results[i] = s;
      return;
    }
    // 2. Write the bytes of every copy, grouped by node. A write is one
    // (item, copy) pair; writes[w] says which.
    struct CopyWrite {
      size_t item;
      uint32_t node_id;
      uint64_t offset;
    };
    std::vector<CopyWrite> writes;
    std::vector<uint64_t> put_ids(keys.size(), 0);
    std::vector<uint64_t> checksums(keys.size(), 0);
    std::vector<int> copies_wanted(keys.size(), 0);
    std::vector<std::vector<uint32_t>> failed_nodes(keys.size());
    absl::flat_hash_map<std::string, std::vector<size_t>> by_node;  // address -> writes
    for (size_t j = 0; j < asked.size(); ++j) {
      size_t i = asked[j];
      const auto* item = started->items()->Get(j);
      if (absl::Status s = StatusFromWire(item->status()); !s.ok()) {
        results[i] = s;
        continue;
      }
      ObjectInfo placement = DecodeObjectInfo(item->placement(), item->replicas(), 0);
      put_ids[i] = item->put_id();
      checksums[i] = Checksum(values[i]);
      for (const CopyLocation& copy : placement.copies) {
        by_node[copy.node_address].push_back(writes.size());
        writes.push_back({i, copy.node_id, copy.offset});
        ++copies_wanted[i];
      }
    }
    std::vector<uint64_t> write_lengths(writes.size());
    for (size_t w = 0; w < writes.size(); ++w) write_lengths[w] = values[writes[w].item].size();
    for (auto& [address, node_writes] : by_node) {
      ForEachNodeRequest(node_writes, write_lengths, [&](size_t first, size_t last) {
        std::vector<WriteOp> ops;
        for (size_t k = first; k < last; ++k) {
          const CopyWrite& w = writes[node_writes[k]];
          ops.push_back({w.offset, values[w.item], checksums[w.item]});
        }
        absl::Status written_status = WriteToNode(address, ops);
        if (written_status.ok()) return;
        for (size_t k = first; k < last; ++k) {
          const CopyWrite& w = writes[node_writes[k]];
          failed_nodes[w.item].push_back(w.node_id);
          results[w.item] = absl::Status(
              written_status.code(),
              absl::StrFormat("writing '%s' to node %s: %s", PrintableKey(keys[w.item]), address,
                              written_status.message()));
        }
      });
    }
    // An item with at least one copy written commits (without the copies
    // that failed); one with none is aborted.
    std::vector<uint64_t> failed_ids;
    std::vector<size_t> written;
    for (size_t i : asked) {
      if (copies_wanted[i] == 0) continue;  // PutStart failed
      if (static_cast<int>(failed_nodes[i].size()) == copies_wanted[i]) {
        failed_ids.push_back(put_ids[i]);
      } else {
        written.push_back(i);
      }
    }
    // 3. Commit what was written (with its checksum); abort the rest.
    if (!failed_ids.empty()) {
      flatbuffers::FlatBufferBuilder abort;
      auto ids = abort.CreateVector(failed_ids);
      FinishMessage(abort, wire::CreatePutAbort(abort, ids));
      (void)CallDirectory(abort);  // best effort: reservations also expire
    }
    if (written.empty()) return;
    std::sort(written.begin(), written.end());
    flatbuffers::FlatBufferBuilder commit;
    std::vector<flatbuffers::Offset<wire::PutCommitItem>> commit_items;
    for (size_t i : written) {
      auto failed = failed_nodes[i].empty() ? 0 : commit.CreateVector(failed_nodes[i]);
      commit_items.push_back(wire::CreatePutCommitItem(commit, put_ids[i], checksums[i], failed));
    }
    auto commit_vec = commit.CreateVector(commit_items);
    FinishMessage(commit, wire::CreatePutCommit(commit, commit_vec));
    auto committed = CallDirectory(commit);
    const wire::StatusList* statuses =
        committed.ok() ? committed->message()->body_as_StatusList() : nullptr;
    if (statuses == nullptr || statuses->items() == nullptr ||
        statuses->items()->size() != written.size()) {
      absl::Status s = committed.ok() ? UnexpectedReply("PutCommit") : committed.status();
      for (size_t i : written) results[i] = s;
      return;
    }
    for (size_t j = 0; j < written.size(); ++j) {
      size_t i = written[j];
      results[i] = StatusFromWire(statuses->items()->Get(j));
      if (results[i].ok()) {
        puts_.fetch_add(1, std::memory_order_relaxed);
        bytes_put_.fetch_add(values[i].size(), std::memory_order_relaxed);
      }
    }
  });
  return results;
}

}  // namespace unipool
