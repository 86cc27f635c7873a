// Gets: where each key lives (the location cache, else a Lookup that leases
// it), then reads from the nearest live copy, verifying the checksum and
// falling back to the other copies, and looks up again what failed.
#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/checksum.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"

namespace unipool {

std::vector<absl::StatusOr<ObjectInfo>> Client::Impl::LookupMany(
    std::span<const std::string_view> keys) {
  std::vector<absl::StatusOr<ObjectInfo>> results(keys.size());
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    auto [asked, index] = ValidKeys(keys, begin, end, results);
    if (asked.empty()) return;
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, asked);
    FinishMessage(fbb, wire::CreateLookup(fbb, list));
    // The lease runs from when the directory saw the lookup, which is after
    // this: a lease measured from here ends early, never late.
    absl::Time sent = absl::Now();
    auto reply = CallDirectory(fbb);
    const wire::LookupReply* found = reply.ok() ? reply->message()->body_as_LookupReply() : nullptr;
    if (found == nullptr || found->items() == nullptr || found->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("Lookup") : reply.status();
      for (size_t i : index) results[i] = s;
      return;
    }
    absl::Duration trust = options_.location_cache_ttl > absl::ZeroDuration()
                               ? options_.location_cache_ttl
                               : absl::Milliseconds(found->lease_ms());
    for (size_t j = 0; j < asked.size(); ++j) {
      const auto* item = found->items()->Get(j);
      absl::Status s = StatusFromWire(item->status());
      if (s.ok()) {
        ObjectInfo info = DecodeObjectInfo(item->placement(), item->replicas(), found->lease_ms());
        if (trust > absl::ZeroDuration()) cache_.Put(asked[j], info, sent + trust);
        results[index[j]] = std::move(info);
      } else {
        cache_.Erase(asked[j]);
        results[index[j]] = s;
      }
    }
  });
  return results;
}

std::vector<const CopyLocation*> Client::Impl::ReadOrder(const ObjectInfo& info) const {
  std::vector<const CopyLocation*> order;
  for (const CopyLocation& copy : info.copies) {
    if (copy.node_up && copy.node_host == host_) order.push_back(&copy);
  }
  for (const CopyLocation& copy : info.copies) {
    if (copy.node_up && copy.node_host != host_) order.push_back(&copy);
  }
  return order;
}

std::vector<absl::Status> Client::Impl::ReadCopies(
    std::span<const std::string_view> keys, const std::vector<size_t>& items,
    const std::vector<std::vector<const CopyLocation*>>& order,
    const std::vector<std::span<uint8_t>>& buffers, const std::vector<ObjectInfo>& objects) {
  std::vector<absl::Status> results(keys.size());
  std::vector<size_t> cursor(keys.size(), 0);
  std::vector<uint64_t> lengths(keys.size(), 0);
  for (size_t i : items) lengths[i] = buffers[i].size();
  std::vector<size_t> active = items;
  // Items whose transport already checked the checksum while copying.
  std::unique_ptr<bool[]> verified(new bool[keys.size()]());
  while (!active.empty()) {
    absl::flat_hash_map<std::string, std::vector<size_t>> by_node;
    for (size_t i : active) by_node[order[i][cursor[i]]->node_address].push_back(i);
    // Every node request of this round; with several, they are in flight at
    // once (one pooled connection each), so nodes send in parallel.
    std::vector<std::function<void()>> requests;
    absl::Mutex again_mu;
    std::vector<size_t> again;
    uint64_t round_bytes = 0;
    for (size_t i : active) round_bytes += lengths[i];
    for (const auto& entry : by_node) {
      const std::string* address_ptr = &entry.first;
      const std::vector<size_t>* items_ptr = &entry.second;
      ForEachNodeRequest(entry.second, lengths, [&](size_t first, size_t last) {
        requests.push_back([&, first, last, address_ptr, items_ptr] {
          const std::string& address = *address_ptr;
          const std::vector<size_t>& node_items = *items_ptr;
          std::vector<ReadOp> ops;
          for (size_t k = first; k < last; ++k) {
            size_t i = node_items[k];
            verified[i] = false;
            ops.push_back(
                {order[i][cursor[i]]->offset, buffers[i], objects[i].checksum, &verified[i]});
          }
          absl::Status reply = ReadFromNode(address, ops);
          for (size_t k = first; k < last; ++k) {
            size_t i = node_items[k];
            if (!reply.ok()) {
              results[i] = absl::Status(
                  reply.code(), absl::StrFormat("reading '%s' from node %s: %s",
                                                PrintableKey(keys[i]), address, reply.message()));
            } else if (!verified[i] && Checksum(buffers[i]) != objects[i].checksum) {
              // Never hand out bytes that are not the committed object's: the
              // memory was reused (a stale location) or damaged.
              checksum_failures_.fetch_add(1, std::memory_order_relaxed);
              results[i] = absl::DataLossError(
                  absl::StrFormat("'%s' read from node %s does not match its checksum (version %u)",
                                  PrintableKey(keys[i]), address, objects[i].version));
            } else {
              results[i] = absl::OkStatus();
              continue;
            }
            if (++cursor[i] < order[i].size()) {
              replica_fallbacks_.fetch_add(1, std::memory_order_relaxed);
              absl::MutexLock lock(&again_mu);
              again.push_back(i);
            }
          }
        });
      });
    }
    RunConcurrently(requests, round_bytes);
    std::sort(again.begin(), again.end());
    active = std::move(again);
  }
  return results;
}

std::vector<absl::StatusOr<uint64_t>> Client::Impl::GetMany(std::span<const std::string_view> keys,
                                                            const BufferFor& buffer_for) {
  // Attempt 0 may use cached locations; a failed item is looked up afresh
  // (its memory may have been reused, the object moved, a node lost), at
  // most twice.
  constexpr int kAttempts = 3;
  std::vector<absl::StatusOr<uint64_t>> results(keys.size(), absl::UnknownError("not read"));
  std::vector<std::optional<ObjectInfo>> where(keys.size());
  std::vector<bool> cached(keys.size(), false);
  std::vector<size_t> pending;
  absl::Time now = absl::Now();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
      results[i] = s;
      continue;
    }
    pending.push_back(i);
  }
  for (int attempt = 0; attempt < kAttempts && !pending.empty(); ++attempt) {
    // 1. Where: the cache first (first attempt only), else the directory.
    std::vector<size_t> lookup;
    for (size_t i : pending) {
      cached[i] = false;
      if (attempt == 0) {
        if (std::optional<ObjectInfo> p = cache_.Get(keys[i], now)) {
          where[i] = std::move(*p);
          cached[i] = true;
          cache_hits_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
      }
      lookup.push_back(i);
    }
    if (!lookup.empty()) {
      std::vector<std::string_view> lookup_keys;
      for (size_t i : lookup) lookup_keys.push_back(keys[i]);
      std::vector<absl::StatusOr<ObjectInfo>> found = LookupMany(lookup_keys);
      for (size_t j = 0; j < lookup.size(); ++j) {
        if (found[j].ok()) {
          where[lookup[j]] = std::move(*found[j]);
        } else {
          where[lookup[j]].reset();
          results[lookup[j]] = found[j].status();  // not found: final
        }
      }
    }
    // 2. Buffers, and the live copies to read, nearest first.
    std::vector<size_t> readable;
    std::vector<std::vector<const CopyLocation*>> order(keys.size());
    std::vector<std::span<uint8_t>> buffers(keys.size());
    std::vector<ObjectInfo> objects(keys.size());
    std::vector<size_t> retry;
    for (size_t i : pending) {
      if (!where[i].has_value()) continue;
      const ObjectInfo& p = *where[i];
      order[i] = ReadOrder(p);
      if (order[i].empty()) {
        if (cached[i]) {
          retry.push_back(i);  // the directory may know of another copy
          continue;
        }
        std::vector<std::string> down;
        for (const CopyLocation& copy : p.copies) down.push_back(copy.node_address);
        results[i] = absl::NotFoundError(
            absl::StrFormat("'%s' is not readable: every copy of it is on a node that is down (%s)",
                            PrintableKey(keys[i]), absl::StrJoin(down, ", ")));
        continue;
      }
      absl::StatusOr<std::span<uint8_t>> buffer = buffer_for(i, p.length);
      if (!buffer.ok()) {
        results[i] = buffer.status();
        continue;
      }
      buffers[i] = *buffer;
      objects[i] = p;
      readable.push_back(i);
    }
    // 3. Read, verify, fall back across copies.
    std::vector<absl::Status> read = ReadCopies(keys, readable, order, buffers, objects);
    for (size_t i : readable) {
      if (read[i].ok()) {
        results[i] = where[i]->length;
        gets_.fetch_add(1, std::memory_order_relaxed);
        bytes_got_.fetch_add(where[i]->length, std::memory_order_relaxed);
        continue;
      }
      results[i] = read[i];
      cache_.Erase(keys[i]);
      if (cached[i]) stale_cached_reads_.fetch_add(1, std::memory_order_relaxed);
      retry.push_back(i);
    }
    for (size_t i : retry) cache_.Erase(keys[i]);
    pending = std::move(retry);
  }
  return results;
}

}  // namespace unipool
