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
    FinishDirectoryRequest(fbb, wire::CreateLookup(fbb, list));
    // The lease runs from when the directory saw the lookup, which is after
    // this: a lease measured from here ends early, never late.
    absl::Time sent = absl::Now();
    auto reply = CallDirectory(fbb);
    const wire::LookupReply* found = reply.ok() ? reply->message()->body_as_LookupReply() : nullptr;
    if (found == nullptr || found->items() == nullptr || found->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("Lookup") : reply.status();
      for (size_t i : index) {
        results[i] = absl::Status(
            s.code(), absl::StrFormat("looking up '%s': %s", PrintableKey(keys[i]), s.message()));
      }
      return;
    }
    for (size_t j = 0; j < asked.size(); ++j) {
      const auto* item = found->items()->Get(j);
      absl::Status s = StatusFromWire(item->status());
      if (s.ok()) {
        ObjectInfo info = DecodeObjectInfo(item->placement(), item->replicas(), found->lease_ms());
        // A page served from flash is looked up again next time: by then it
        // may be read back into memory.
        if (!ServedFromFlash(info)) CacheLocation(asked[j], info, sent, found->lease_ms());
        results[index[j]] = std::move(info);
      } else {
        cache_.Erase(asked[j]);
        results[index[j]] = s;
      }
    }
  });
  return results;
}

// One GetMany as it goes through its attempts.
struct Client::Impl::GetState {
  std::span<const std::string_view> keys;
  const BufferFor& buffer_for;
  std::vector<absl::StatusOr<uint64_t>> results;
  std::vector<std::optional<ObjectInfo>> where;  // the location being tried
  std::vector<bool> cached;                      // ... came from the location cache
  std::vector<size_t> pending;                   // items not read yet
  // Locations from a lookup just made (GetPrefix), used instead of the cache.
  const std::vector<ObjectInfo>* known = nullptr;
  // Why an item's last read failed, when its node could not be reached: if
  // the directory then has no other copy, the get is Unavailable (the page
  // exists but cannot be read now: recompute it), not NotFound.
  std::vector<absl::Status> unreachable;
};

// One item being read: its buffer and its live copies, nearest first.
struct Client::Impl::ReadItem {
  size_t item = 0;  // index into the keys
  std::span<uint8_t> buffer;
  const ObjectInfo* object = nullptr;
  std::vector<const CopyLocation*> order;
  size_t cursor = 0;      // the copy being tried
  bool verified = false;  // the transport checked the checksum while copying
  absl::Status result;
};

// Reads of several items from one node, in one request.
struct Client::Impl::NodeRead {
  std::string address;
  bool flash = false;         // from the node's flash (FlashRead), not its slab
  std::vector<size_t> reads;  // indexes into the ReadItems
};

std::vector<absl::StatusOr<uint64_t>> Client::Impl::GetMany(std::span<const std::string_view> keys,
                                                            const BufferFor& buffer_for,
                                                            const std::vector<ObjectInfo>* known) {
  // Attempt 0 may use cached locations; a failed item is looked up afresh
  // (its memory may have been reused, the object moved, a node lost), at
  // most twice.
  constexpr int kAttempts = 3;
  GetState state{keys,
                 buffer_for,
                 std::vector<absl::StatusOr<uint64_t>>(keys.size(), absl::UnknownError("not read")),
                 std::vector<std::optional<ObjectInfo>>(keys.size()),
                 std::vector<bool>(keys.size(), false),
                 {},
                 known,
                 std::vector<absl::Status>(keys.size())};
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
      state.results[i] = s;
    } else {
      state.pending.push_back(i);
    }
  }
  for (int attempt = 0; attempt < kAttempts && !state.pending.empty(); ++attempt) {
    Locate(state, /*use_cache=*/attempt == 0);
    std::vector<size_t> retry;
    std::vector<ReadItem> reads = PrepareReads(state, retry);
    ReadCopies(keys, reads);
    Settle(state, reads, retry);
    state.pending = std::move(retry);
  }
  return std::move(state.results);
}

void Client::Impl::Locate(GetState& state, bool use_cache) {
  absl::Time now = absl::Now();
  std::vector<size_t> lookup;
  for (size_t i : state.pending) {
    state.cached[i] = false;
    if (use_cache && state.known != nullptr) {
      state.where[i] = (*state.known)[i];
      state.cached[i] = true;  // as a cached location: retried after a fresh lookup
      continue;
    }
    if (use_cache) {
      if (std::optional<ObjectInfo> info = cache_.Get(state.keys[i], now)) {
        state.where[i] = std::move(*info);
        state.cached[i] = true;
        cache_hits_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
    }
    lookup.push_back(i);
  }
  if (lookup.empty()) return;
  std::vector<std::string_view> lookup_keys;
  for (size_t i : lookup) lookup_keys.push_back(state.keys[i]);
  std::vector<absl::StatusOr<ObjectInfo>> found = LookupMany(lookup_keys);
  for (size_t j = 0; j < lookup.size(); ++j) {
    size_t i = lookup[j];
    if (found[j].ok()) {
      state.where[i] = std::move(*found[j]);
    } else {
      state.where[i].reset();
      state.results[i] = found[j].status();  // not found: final
      if (absl::IsNotFound(found[j].status()) && !state.unreachable[i].ok()) {
        state.results[i] = absl::UnavailableError(absl::StrFormat(
            "'%s' cannot be read now: no copy of it is on a node that can be reached (%s)",
            PrintableKey(state.keys[i]), state.unreachable[i].message()));
      }
    }
  }
}

std::vector<Client::Impl::ReadItem> Client::Impl::PrepareReads(GetState& state,
                                                               std::vector<size_t>& retry) {
  std::vector<ReadItem> reads;
  for (size_t i : state.pending) {
    if (!state.where[i].has_value()) continue;
    const ObjectInfo& info = *state.where[i];
    std::vector<const CopyLocation*> order = ReadOrder(info);
    if (order.empty()) {
      if (state.cached[i]) {
        retry.push_back(i);  // the directory may know of another copy
        continue;
      }
      std::vector<std::string> down;
      for (const CopyLocation& copy : info.copies) down.push_back(copy.node_address);
      state.results[i] = absl::NotFoundError(
          absl::StrFormat("'%s' is not readable: every copy of it is on a node that is down (%s)",
                          PrintableKey(state.keys[i]), absl::StrJoin(down, ", ")));
      continue;
    }
    absl::StatusOr<std::span<uint8_t>> buffer = state.buffer_for(i, info.length);
    if (!buffer.ok()) {
      state.results[i] = buffer.status();
      continue;
    }
    reads.push_back({i, *buffer, &info, std::move(order)});
  }
  return reads;
}

void Client::Impl::Settle(GetState& state, const std::vector<ReadItem>& reads,
                          std::vector<size_t>& retry) {
  for (const ReadItem& read : reads) {
    size_t i = read.item;
    if (read.result.ok()) {
      state.results[i] = read.object->length;
      gets_.fetch_add(1, std::memory_order_relaxed);
      bytes_got_.fetch_add(read.object->length, std::memory_order_relaxed);
      continue;
    }
    state.results[i] = read.result;
    // Only a location the directory just gave proves the object exists; a
    // cached one may be stale (the object gone, the node back with a new
    // slab), and then NotFound is the truth.
    if (!state.cached[i] &&
        (absl::IsUnavailable(read.result) || absl::IsDeadlineExceeded(read.result))) {
      state.unreachable[i] = read.result;
    }
    if (state.cached[i]) stale_cached_reads_.fetch_add(1, std::memory_order_relaxed);
    retry.push_back(i);
  }
  for (size_t i : retry) cache_.Erase(state.keys[i]);
}

void Client::Impl::CacheLocation(std::string_view key, const ObjectInfo& info, absl::Time sent,
                                 uint32_t lease_ms) {
  absl::Duration trust = options_.location_cache_ttl > absl::ZeroDuration()
                             ? options_.location_cache_ttl
                             : absl::Milliseconds(lease_ms);
  if (trust > absl::ZeroDuration()) cache_.Put(key, info, sent + trust);
}

Client::Impl::BufferFor Client::Impl::IntoBuffers(std::span<const std::string_view> keys,
                                                  std::span<const std::span<uint8_t>> buffers) {
  return [keys, buffers](size_t i, uint64_t length) -> absl::StatusOr<std::span<uint8_t>> {
    if (buffers[i].size() < length) {
      return absl::InvalidArgumentError(
          absl::StrFormat("buffer of %u bytes is too small for '%s' (%u bytes)", buffers[i].size(),
                          PrintableKey(keys[i]), length));
    }
    return buffers[i].first(length);
  };
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

void Client::Impl::ReadCopies(std::span<const std::string_view> keys,
                              std::vector<ReadItem>& reads) {
  std::vector<uint64_t> lengths(reads.size());
  for (size_t r = 0; r < reads.size(); ++r) lengths[r] = reads[r].buffer.size();
  std::vector<size_t> active(reads.size());
  for (size_t r = 0; r < reads.size(); ++r) active[r] = r;
  while (!active.empty()) {
    // Every node request of this round; with several, they are in flight at
    // once (one pooled connection each), so nodes send in parallel.
    absl::flat_hash_map<std::pair<std::string, bool>, std::vector<size_t>> by_node;
    uint64_t round_bytes = 0;
    for (size_t r : active) {
      const CopyLocation* copy = reads[r].order[reads[r].cursor];
      by_node[{copy->node_address, copy->on_flash}].push_back(r);
      round_bytes += lengths[r];
    }
    std::vector<NodeRead> requests;
    // Named references, not structured bindings: lambdas may not capture
    // bindings before C++20's clang 16 (Debian 12 has clang 14).
    for (const auto& node_entry : by_node) {
      const std::string& address = node_entry.first.first;
      bool flash = node_entry.first.second;
      const std::vector<size_t>& node_reads = node_entry.second;
      ForEachNodeRequest(node_reads, lengths, [&](size_t first, size_t last) {
        requests.push_back(
            {address, flash,
             std::vector<size_t>(node_reads.begin() + first, node_reads.begin() + last)});
      });
    }
    RunConcurrently(requests.size(), round_bytes,
                    [&](size_t r) { ReadFromOneNode(keys, reads, requests[r]); });
    // What failed goes to its next copy, if it has one.
    std::vector<size_t> again;
    for (size_t r : active) {
      if (!reads[r].result.ok() && reads[r].cursor < reads[r].order.size()) again.push_back(r);
    }
    active = std::move(again);
  }
}

void Client::Impl::ReadFromOneNode(std::span<const std::string_view> keys,
                                   std::vector<ReadItem>& reads, const NodeRead& request) {
  std::vector<ReadOp> ops;
  std::vector<FlashReadOp> flash_ops;
  for (size_t r : request.reads) {
    ReadItem& read = reads[r];
    read.verified = false;
    const CopyLocation* copy = read.order[read.cursor];
    if (request.flash) {
      flash_ops.push_back({keys[read.item], read.object->version, read.object->checksum,
                           read.buffer, &copy->capability});
      continue;
    }
    ops.push_back(
        {copy->offset, read.buffer, read.object->checksum, &read.verified, &copy->capability});
  }
  absl::Status reply = request.flash ? ReadFromFlash(request.address, flash_ops)
                                     : ReadFromNode(request.address, ops);
  const ReadItem& first = reads[request.reads.front()];
  NoteUnreachable(first.order[first.cursor]->node_id, reply);
  for (size_t r : request.reads) {
    ReadItem& read = reads[r];
    std::string_view key = keys[read.item];
    if (!reply.ok()) {
      read.result = absl::Status(reply.code(),
                                 absl::StrFormat("reading '%s' from node %s: %s", PrintableKey(key),
                                                 request.address, reply.message()));
    } else if (!read.verified && Checksum(read.buffer) != read.object->checksum) {
      // Never hand out bytes that are not the committed object's: the memory
      // was reused (a stale location) or damaged.
      checksum_failures_.fetch_add(1, std::memory_order_relaxed);
      read.result = absl::DataLossError(
          absl::StrFormat("'%s' read from node %s does not match its checksum (version %u)",
                          PrintableKey(key), request.address, read.object->version));
    } else {
      read.result = absl::OkStatus();
      continue;
    }
    if (++read.cursor < read.order.size()) {
      replica_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace unipool
