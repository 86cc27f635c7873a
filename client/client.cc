#include "unipool/client.h"

#include <algorithm>
#include <atomic>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "client/connection_pool.h"
#include "client/tcp_node_io.h"
#include "common/checksum.h"
#include "common/protocol.h"
#include "common/status_macros.h"

namespace unipool {
namespace {

// Node requests are cut so one frame's payload stays well under the frame
// limit and a node's receive buffer is filled in large pieces.
constexpr uint64_t kMaxBytesPerNodeRequest = 256ull << 20;
static_assert(kMaxBytesPerNodeRequest <= FrameLimits{}.max_payload_bytes);

struct Placement {
  uint32_t node_id = 0;
  std::string node_address;
  bool node_up = false;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t version = 0;
  uint64_t checksum = 0;
};

Placement FromWire(const wire::Placement* p) {
  Placement out;
  if (p == nullptr) return out;
  out.node_id = p->node_id();
  out.node_address = std::string(AsStringView(p->node_address()));
  out.node_up = p->node_up();
  out.offset = p->offset();
  out.length = p->length();
  out.version = p->version();
  out.checksum = p->checksum();
  return out;
}

absl::Status UnexpectedReply(std::string_view request) {
  return absl::InternalError(absl::StrFormat("unexpected reply to %s", request));
}

// Items addressed to one node, cut into requests of bounded size.
// `on_request(first, last)` is called for item index ranges [first, last).
template <typename Fn>
void ForEachNodeRequest(const std::vector<size_t>& items, const std::vector<uint64_t>& lengths,
                        Fn on_request) {
  size_t first = 0;
  while (first < items.size()) {
    size_t last = first;
    uint64_t bytes = 0;
    while (last < items.size() && last - first < kMaxBatchItems &&
           (last == first || bytes + lengths[items[last]] <= kMaxBytesPerNodeRequest)) {
      bytes += lengths[items[last]];
      ++last;
    }
    on_request(first, last);
    first = last;
  }
}

}  // namespace

class Client::Impl {
 public:
  explicit Impl(const ClientOptions& options)
      : options_(options),
        pool_(ConnectionOptions{.peer_name = options.name,
                                .role = wire::Role::Client,
                                .connect_timeout = options.connect_timeout,
                                .io_timeout = options.io_timeout},
              options.max_idle_connections),
        node_io_(std::make_unique<TcpNodeIo>(&pool_)) {}

  absl::StatusOr<ReceivedFrame> CallDirectory(const flatbuffers::FlatBufferBuilder& request) {
    directory_requests_.fetch_add(1, std::memory_order_relaxed);
    auto reply = pool_.Call(options_.directory, request);
    if (!reply.ok() && reply.status().code() == absl::StatusCode::kUnavailable) {
      return absl::UnavailableError(
          absl::StrFormat("directory %s: %s", options_.directory, reply.status().message()));
    }
    return reply;
  }

  absl::Status WriteToNode(const std::string& address, std::span<const WriteOp> ops) {
    node_requests_.fetch_add(1, std::memory_order_relaxed);
    return node_io_->Write(address, ops);
  }
  absl::Status ReadFromNode(const std::string& address, std::span<const ReadOp> ops) {
    node_requests_.fetch_add(1, std::memory_order_relaxed);
    return node_io_->Read(address, ops);
  }

  std::vector<absl::Status> BatchPut(std::span<const std::string_view> keys,
                                     std::span<const std::span<const uint8_t>> values,
                                     const PutOptions& options);
  std::vector<absl::StatusOr<Placement>> LookupMany(std::span<const std::string_view> keys);
  // Reads every looked-up object into its buffer and verifies it. Items
  // whose placement failed keep that error.
  std::vector<absl::Status> ReadMany(std::span<const std::string_view> keys,
                                     const std::vector<absl::StatusOr<Placement>>& placements,
                                     std::span<const std::span<uint8_t>> buffers);
  absl::StatusOr<std::vector<bool>> ExistsMany(std::span<const std::string_view> keys);
  std::vector<absl::Status> RemoveMany(std::span<const std::string_view> keys);
  absl::StatusOr<PoolState> Status();

  ClientStats stats() const {
    ClientStats s;
    s.puts = puts_.load();
    s.gets = gets_.load();
    s.bytes_put = bytes_put_.load();
    s.bytes_got = bytes_got_.load();
    s.directory_requests = directory_requests_.load();
    s.node_requests = node_requests_.load();
    s.checksum_failures = checksum_failures_.load();
    s.connections_opened = pool_.connections_opened();
    s.transport = std::string(node_io_->name());
    return s;
  }

 private:
  // Runs `fn(chunk_keys, first_index)` over chunks of at most kMaxBatchItems.
  template <typename Fn>
  static void InChunks(size_t count, Fn fn) {
    for (size_t first = 0; first < count; first += kMaxBatchItems) {
      fn(first, std::min(count, first + kMaxBatchItems));
    }
  }

  const ClientOptions options_;
  ConnectionPool pool_;
  std::unique_ptr<NodeIo> node_io_;
  std::atomic<uint64_t> puts_{0}, gets_{0}, bytes_put_{0}, bytes_got_{0};
  std::atomic<uint64_t> directory_requests_{0}, node_requests_{0}, checksum_failures_{0};
};

std::vector<absl::Status> Client::Impl::BatchPut(std::span<const std::string_view> keys,
                                                 std::span<const std::span<const uint8_t>> values,
                                                 const PutOptions& options) {
  std::vector<absl::Status> results(keys.size());
  if (keys.size() != values.size()) {
    results.assign(keys.size(), absl::InvalidArgumentError("BatchPut: keys and values differ in count"));
    return results;
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
      auto key = start.CreateVector(reinterpret_cast<const uint8_t*>(keys[i].data()),
                                    keys[i].size());
      items.push_back(wire::CreatePutStartItem(start, key, values[i].size(), options.replace));
      asked.push_back(i);
    }
    if (asked.empty()) return;
    auto vec = start.CreateVector(items);
    FinishMessage(start, wire::CreatePutStart(start, vec));
    auto reply = CallDirectory(start);
    const wire::PutStartReply* started = reply.ok() ? reply->message()->body_as_PutStartReply() : nullptr;
    if (started == nullptr || started->items() == nullptr ||
        started->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("PutStart") : reply.status();
      for (size_t i : asked) results[i] = s;
      return;
    }
    // 2. Write the bytes, grouped by node.
    std::vector<uint64_t> put_ids(keys.size(), 0);
    std::vector<uint64_t> lengths(keys.size(), 0);
    std::vector<uint64_t> offsets(keys.size(), 0);
    std::vector<uint64_t> checksums(keys.size(), 0);
    absl::flat_hash_map<std::string, std::vector<size_t>> by_node;
    for (size_t j = 0; j < asked.size(); ++j) {
      size_t i = asked[j];
      const auto* item = started->items()->Get(j);
      if (absl::Status s = StatusFromWire(item->status()); !s.ok()) {
        results[i] = s;
        continue;
      }
      Placement placement = FromWire(item->placement());
      put_ids[i] = item->put_id();
      lengths[i] = placement.length;
      offsets[i] = placement.offset;
      checksums[i] = Checksum(values[i]);
      by_node[placement.node_address].push_back(i);
    }
    std::vector<uint64_t> failed_ids;
    std::vector<size_t> written;
    for (auto& [address, node_items] : by_node) {
      ForEachNodeRequest(node_items, lengths, [&](size_t first, size_t last) {
        std::vector<WriteOp> ops;
        for (size_t k = first; k < last; ++k) {
          size_t i = node_items[k];
          ops.push_back({offsets[i], values[i], checksums[i]});
        }
        absl::Status written_status = WriteToNode(address, ops);
        for (size_t k = first; k < last; ++k) {
          size_t i = node_items[k];
          if (written_status.ok()) {
            written.push_back(i);
          } else {
            results[i] = absl::Status(written_status.code(),
                                      absl::StrFormat("writing '%s' to node %s: %s",
                                                      PrintableKey(keys[i]), address,
                                                      written_status.message()));
            failed_ids.push_back(put_ids[i]);
          }
        }
      });
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
      commit_items.push_back(wire::CreatePutCommitItem(commit, put_ids[i], checksums[i]));
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

std::vector<absl::StatusOr<Placement>> Client::Impl::LookupMany(
    std::span<const std::string_view> keys) {
  std::vector<absl::StatusOr<Placement>> results(keys.size());
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    std::vector<std::string_view> asked;
    std::vector<size_t> index;
    for (size_t i = begin; i < end; ++i) {
      if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
        results[i] = s;
      } else {
        asked.push_back(keys[i]);
        index.push_back(i);
      }
    }
    if (asked.empty()) return;
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, asked);
    FinishMessage(fbb, wire::CreateLookup(fbb, list));
    auto reply = CallDirectory(fbb);
    const wire::LookupReply* found = reply.ok() ? reply->message()->body_as_LookupReply() : nullptr;
    if (found == nullptr || found->items() == nullptr || found->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("Lookup") : reply.status();
      for (size_t i : index) results[i] = s;
      return;
    }
    for (size_t j = 0; j < asked.size(); ++j) {
      const auto* item = found->items()->Get(j);
      absl::Status s = StatusFromWire(item->status());
      if (s.ok()) {
        results[index[j]] = FromWire(item->placement());
      } else {
        results[index[j]] = s;
      }
    }
  });
  return results;
}

std::vector<absl::Status> Client::Impl::ReadMany(
    std::span<const std::string_view> keys,
    const std::vector<absl::StatusOr<Placement>>& placements,
    std::span<const std::span<uint8_t>> buffers) {
  std::vector<absl::Status> results(keys.size());
  std::vector<uint64_t> lengths(keys.size(), 0);
  absl::flat_hash_map<std::string, std::vector<size_t>> by_node;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!placements[i].ok()) {
      results[i] = placements[i].status();
      continue;
    }
    const Placement& p = *placements[i];
    if (!p.node_up) {
      results[i] = absl::UnavailableError(absl::StrFormat(
          "'%s' is on node %u (%s), which is down", PrintableKey(keys[i]), p.node_id,
          p.node_address));
      continue;
    }
    if (buffers[i].size() < p.length) {
      results[i] = absl::InvalidArgumentError(absl::StrFormat(
          "buffer of %u bytes is too small for '%s' (%u bytes)", buffers[i].size(),
          PrintableKey(keys[i]), p.length));
      continue;
    }
    lengths[i] = p.length;
    by_node[p.node_address].push_back(i);
  }
  for (auto& [address, node_items] : by_node) {
    ForEachNodeRequest(node_items, lengths, [&](size_t first, size_t last) {
      std::vector<ReadOp> ops;
      for (size_t k = first; k < last; ++k) {
        size_t i = node_items[k];
        ops.push_back({placements[i]->offset, buffers[i].first(lengths[i])});
      }
      absl::Status reply = ReadFromNode(address, ops);
      for (size_t k = first; k < last; ++k) {
        size_t i = node_items[k];
        if (!reply.ok()) {
          results[i] = absl::Status(reply.code(),
                                    absl::StrFormat("reading '%s' from node %s: %s",
                                                    PrintableKey(keys[i]), address,
                                                    reply.message()));
          continue;
        }
        // Never hand out bytes that are not the committed object's.
        if (Checksum(buffers[i].first(lengths[i])) != placements[i]->checksum) {
          checksum_failures_.fetch_add(1, std::memory_order_relaxed);
          results[i] = absl::DataLossError(absl::StrFormat(
              "'%s' read from node %s does not match its checksum (version %u)",
              PrintableKey(keys[i]), address, placements[i]->version));
          continue;
        }
        gets_.fetch_add(1, std::memory_order_relaxed);
        bytes_got_.fetch_add(lengths[i], std::memory_order_relaxed);
      }
    });
  }
  return results;
}

absl::StatusOr<std::vector<bool>> Client::Impl::ExistsMany(std::span<const std::string_view> keys) {
  std::vector<bool> exists;
  exists.reserve(keys.size());
  for (std::string_view key : keys) RETURN_IF_ERROR(ValidateKey(key));
  for (size_t begin = 0; begin < keys.size(); begin += kMaxBatchItems) {
    auto chunk = keys.subspan(begin, std::min(keys.size() - begin, kMaxBatchItems));
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, chunk);
    FinishMessage(fbb, wire::CreateExists(fbb, list));
    ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
    const wire::ExistsReply* r = reply.message()->body_as_ExistsReply();
    if (r == nullptr || r->exists() == nullptr || r->exists()->size() != chunk.size()) {
      return UnexpectedReply("Exists");
    }
    for (bool e : *r->exists()) exists.push_back(e);
  }
  return exists;
}

std::vector<absl::Status> Client::Impl::RemoveMany(std::span<const std::string_view> keys) {
  std::vector<absl::Status> results(keys.size());
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    std::vector<std::string_view> asked;
    std::vector<size_t> index;
    for (size_t i = begin; i < end; ++i) {
      if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
        results[i] = s;
      } else {
        asked.push_back(keys[i]);
        index.push_back(i);
      }
    }
    if (asked.empty()) return;
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, asked);
    FinishMessage(fbb, wire::CreateRemove(fbb, list));
    auto reply = CallDirectory(fbb);
    const wire::StatusList* statuses = reply.ok() ? reply->message()->body_as_StatusList() : nullptr;
    if (statuses == nullptr || statuses->items() == nullptr ||
        statuses->items()->size() != asked.size()) {
      absl::Status s = reply.ok() ? UnexpectedReply("Remove") : reply.status();
      for (size_t i : index) results[i] = s;
      return;
    }
    for (size_t j = 0; j < asked.size(); ++j) {
      results[index[j]] = StatusFromWire(statuses->items()->Get(j));
    }
  });
  return results;
}

absl::StatusOr<PoolState> Client::Impl::Status() {
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateGetStatus(fbb));
  ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
  const wire::StatusReply* r = reply.message()->body_as_StatusReply();
  if (r == nullptr) return UnexpectedReply("GetStatus");
  PoolState state;
  state.objects = r->objects();
  state.pending_puts = r->pending_puts();
  state.capacity = r->capacity();
  state.used = r->used();
  if (r->nodes() != nullptr) {
    for (const wire::NodeInfo* n : *r->nodes()) {
      NodeState node;
      node.node_id = n->node_id();
      node.name = std::string(AsStringView(n->name()));
      node.host = std::string(AsStringView(n->host()));
      node.data_address = std::string(AsStringView(n->data_address()));
      node.up = n->up();
      node.capacity = n->capacity();
      node.used = n->used();
      node.largest_free = n->largest_free();
      node.objects = n->objects();
      if (n->transports() != nullptr) {
        for (const auto* t : *n->transports()) node.transports.emplace_back(AsStringView(t));
      }
      node.huge_pages = n->huge_pages();
      node.ms_since_heartbeat = n->last_heartbeat_ms_ago();
      state.nodes.push_back(std::move(node));
    }
  }
  return state;
}

// ------------------------------------------------------------------ Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  RETURN_IF_ERROR(impl->Status().status());  // the directory answers
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

absl::Status Client::Put(std::string_view key, std::span<const uint8_t> value,
                         const PutOptions& options) {
  return impl_->BatchPut({&key, 1}, {&value, 1}, options)[0];
}

absl::StatusOr<std::vector<uint8_t>> Client::Get(std::string_view key) {
  return std::move(BatchGet({&key, 1})[0]);
}

absl::StatusOr<size_t> Client::Get(std::string_view key, std::span<uint8_t> buffer) {
  return std::move(BatchGet({&key, 1}, {&buffer, 1})[0]);
}

std::vector<absl::Status> Client::BatchPut(std::span<const std::string_view> keys,
                                           std::span<const std::span<const uint8_t>> values,
                                           const PutOptions& options) {
  return impl_->BatchPut(keys, values, options);
}

std::vector<absl::StatusOr<std::vector<uint8_t>>> Client::BatchGet(
    std::span<const std::string_view> keys) {
  auto placements = impl_->LookupMany(keys);
  std::vector<std::vector<uint8_t>> values(keys.size());
  std::vector<std::span<uint8_t>> buffers(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (placements[i].ok()) {
      values[i].resize(placements[i]->length);
      buffers[i] = values[i];
    }
  }
  auto statuses = impl_->ReadMany(keys, placements, buffers);
  std::vector<absl::StatusOr<std::vector<uint8_t>>> results;
  results.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok()) {
      results.push_back(std::move(values[i]));
    } else {
      results.push_back(statuses[i]);
    }
  }
  return results;
}

std::vector<absl::StatusOr<size_t>> Client::BatchGet(std::span<const std::string_view> keys,
                                                     std::span<const std::span<uint8_t>> buffers) {
  std::vector<absl::StatusOr<size_t>> results;
  if (keys.size() != buffers.size()) {
    results.assign(keys.size(),
                   absl::InvalidArgumentError("BatchGet: keys and buffers differ in count"));
    return results;
  }
  auto placements = impl_->LookupMany(keys);
  auto statuses = impl_->ReadMany(keys, placements, buffers);
  results.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok()) {
      results.push_back(static_cast<size_t>(placements[i]->length));
    } else {
      results.push_back(statuses[i]);
    }
  }
  return results;
}

absl::StatusOr<bool> Client::Exists(std::string_view key) {
  ASSIGN_OR_RETURN(std::vector<bool> exists, impl_->ExistsMany({&key, 1}));
  return exists[0];
}

absl::StatusOr<std::vector<bool>> Client::BatchExists(std::span<const std::string_view> keys) {
  return impl_->ExistsMany(keys);
}

absl::Status Client::Remove(std::string_view key) { return impl_->RemoveMany({&key, 1})[0]; }

std::vector<absl::Status> Client::BatchRemove(std::span<const std::string_view> keys) {
  return impl_->RemoveMany(keys);
}

absl::StatusOr<ObjectInfo> Client::Stat(std::string_view key) {
  auto placements = impl_->LookupMany({&key, 1});
  if (!placements[0].ok()) return placements[0].status();
  const Placement& p = *placements[0];
  return ObjectInfo{p.node_id, p.node_address, p.node_up, p.length, p.version, p.checksum};
}

absl::StatusOr<PoolState> Client::Status() { return impl_->Status(); }

absl::StatusOr<ListResult> Client::List(std::string_view prefix, size_t limit,
                                        std::string_view start_after) {
  if (limit == 0 || limit > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrFormat("list limit %u is not in 1..%u", limit, kMaxBatchItems));
  }
  if (prefix.size() > kMaxKeyBytes || start_after.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError("list prefix or start key longer than a key can be");
  }
  flatbuffers::FlatBufferBuilder fbb;
  auto p = fbb.CreateVector(reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
  auto after =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(start_after.data()), start_after.size());
  FinishMessage(fbb, wire::CreateList(fbb, p, after, static_cast<uint32_t>(limit)));
  ASSIGN_OR_RETURN(ReceivedFrame reply, impl_->CallDirectory(fbb));
  const wire::ListReply* r = reply.message()->body_as_ListReply();
  if (r == nullptr) return UnexpectedReply("List");
  ListResult result;
  result.more = r->more();
  if (r->items() != nullptr) {
    result.entries.reserve(r->items()->size());
    for (const wire::ListItem* item : *r->items()) {
      ListEntry entry;
      entry.key = std::string(AsStringView(item->key()));
      entry.length = item->length();
      entry.version = item->version();
      entry.created_unix_ms = item->created_unix_ms();
      if (item->nodes() != nullptr) {
        for (const auto* n : *item->nodes()) entry.nodes.emplace_back(AsStringView(n));
      }
      entry.pinned = item->pinned();
      result.entries.push_back(std::move(entry));
    }
  }
  return result;
}

absl::StatusOr<PoolMetrics> Client::Metrics(int history_seconds) {
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateGetMetrics(fbb, static_cast<uint32_t>(std::max(0, history_seconds))));
  ASSIGN_OR_RETURN(ReceivedFrame reply, impl_->CallDirectory(fbb));
  const wire::MetricsReply* r = reply.message()->body_as_MetricsReply();
  if (r == nullptr) return UnexpectedReply("GetMetrics");
  PoolMetrics metrics;
  metrics.uptime_ms = r->uptime_ms();
  metrics.puts = r->puts();
  metrics.hits = r->hits();
  metrics.misses = r->misses();
  metrics.removes = r->removes();
  metrics.evictions = r->evictions();
  if (r->history() != nullptr) {
    for (const wire::MetricsSecond* s : *r->history()) {
      metrics.history.push_back({s->unix_seconds(), s->puts(), s->hits(), s->misses(),
                                 s->removes(), s->evictions()});
    }
  }
  return metrics;
}

// Lifecycle operations (issue 4): declared for the CLI; implemented with the
// directory's lifecycle requests.
absl::Status Client::Pin(std::string_view, bool) {
  return absl::UnimplementedError("Pin is not implemented yet");
}
absl::Status Client::Unpin(std::string_view, bool) {
  return absl::UnimplementedError("Unpin is not implemented yet");
}
absl::Status Client::Drain(std::string_view) {
  return absl::UnimplementedError("Drain is not implemented yet");
}
absl::Status Client::Undrain(std::string_view) {
  return absl::UnimplementedError("Undrain is not implemented yet");
}
absl::StatusOr<uint64_t> Client::Evict(std::string_view) {
  return absl::UnimplementedError("Evict is not implemented yet");
}

ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace unipool
