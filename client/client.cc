#include "unipool/client.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "location_cache.h"
#include "unipool/common/checksum.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/shm/shm_node_io.h"
#include "unipool/tcp/tcp_node_io.h"
#include "unipool/transport/connection_pool.h"
#include "unipool/verbs/verbs_node_io.h"

namespace unipool {
namespace {

// Node requests are cut so one frame's payload stays well under the frame
// limit and a node's receive buffer is filled in large pieces.
constexpr uint64_t kMaxBytesPerNodeRequest = 256ull << 20;
static_assert(kMaxBytesPerNodeRequest <= FrameLimits{}.max_payload_bytes);

// Where an object (or one copy of it) lives.
struct Placement {
  uint32_t node_id = 0;
  std::string node_address;
  bool node_up = false;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t version = 0;
  uint64_t checksum = 0;
  std::string node_host;
  std::vector<Placement> replicas;  // further copies (only on the first)
};

Placement FromWire(
    const wire::Placement* p,
    const flatbuffers::Vector<flatbuffers::Offset<wire::Placement>>* replicas = nullptr) {
  Placement out;
  if (p == nullptr) return out;
  out.node_id = p->node_id();
  out.node_address = std::string(AsStringView(p->node_address()));
  out.node_up = p->node_up();
  out.offset = p->offset();
  out.length = p->length();
  out.version = p->version();
  out.checksum = p->checksum();
  out.node_host = std::string(AsStringView(p->node_host()));
  if (replicas != nullptr) {
    for (const wire::Placement* r : *replicas) out.replicas.push_back(FromWire(r));
  }
  return out;
}

// Every copy of an object, the first one first.
std::vector<const Placement*> CopiesOf(const Placement& p) {
  std::vector<const Placement*> copies = {&p};
  for (const Placement& r : p.replicas) copies.push_back(&r);
  return copies;
}

std::string LocalHostName() {
  char name[256] = "";
  gethostname(name, sizeof name - 1);
  return name;
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

// The valid keys among keys[begin, end) and their indexes; each invalid key's
// error goes straight into its result.
template <typename Results>
std::pair<std::vector<std::string_view>, std::vector<size_t>> ValidKeys(
    std::span<const std::string_view> keys, size_t begin, size_t end, Results& results) {
  std::vector<std::string_view> valid;
  std::vector<size_t> index;
  for (size_t i = begin; i < end; ++i) {
    if (absl::Status s = ValidateKey(keys[i]); !s.ok()) {
      results[i] = s;
    } else {
      valid.push_back(keys[i]);
      index.push_back(i);
    }
  }
  return {std::move(valid), std::move(index)};
}

// Runs every request, several at once when there are several and they move
// enough bytes to repay starting threads (small batches stay on the caller's
// thread). Each request touches only its own items.
void RunConcurrently(const std::vector<std::function<void()>>& requests, uint64_t bytes) {
  constexpr uint64_t kConcurrentFromBytes = 1ull << 20;
  constexpr size_t kMaxInFlight = 8;
  if (requests.size() < 2 || bytes < kConcurrentFromBytes) {
    for (const auto& request : requests) request();
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t r = next.fetch_add(1); r < requests.size(); r = next.fetch_add(1)) requests[r]();
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(requests.size(), kMaxInFlight); ++t) helpers.emplace_back(worker);
  worker();
  for (std::thread& h : helpers) h.join();
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
        tcp_io_(&pool_),
        node_io_(&tcp_io_),
        host_(LocalHostName()),
        cache_(options.location_cache_entries) {}

  // Chooses how page bytes move (ClientOptions::rdma).
  absl::Status SetUpTransport() {
    const std::string& rdma = options_.rdma;
    if (rdma == "off" || rdma == "tcp") return absl::OkStatus();
    if (rdma != "auto" && rdma != "rc" && rdma != "uc") {
      return absl::InvalidArgumentError(
          absl::StrFormat("rdma must be auto, rc, uc or off, not '%s'", rdma));
    }
    VerbsOptions verbs;
    verbs.device = options_.rdma_device;
    if (verbs.device.empty()) {
      if (const char* env = std::getenv("UNIPOOL_RDMA_DEVICE")) verbs.device = env;
    }
    verbs.mode = rdma == "uc" ? RdmaMode::kUC : RdmaMode::kRC;
    if (const char* drop = std::getenv("UNIPOOL_TEST_DROP_UC_EVERY"))
      verbs.drop_every = std::atoi(drop);
    auto created = VerbsNodeIo::Create(verbs, pool_.options(), &tcp_io_);
    if (!created.ok()) {
      if (rdma == "auto") return absl::OkStatus();  // no device here: TCP
      return absl::FailedPreconditionError(
          absl::StrFormat("rdma=%s requested: %s", rdma, created.status().message()));
    }
    verbs_io_ = std::move(*created);
    node_io_ = verbs_io_.get();
    return absl::OkStatus();
  }

  // Same-host path in front of it (ClientOptions::shm): nodes on this
  // machine through their shared slab, every other node as chosen above.
  void SetUpShm() {
    if (!options_.shm || options_.rdma == "rc" || options_.rdma == "uc") return;
    shm_io_ = std::make_unique<ShmNodeIo>(node_io_);
    node_io_ = shm_io_.get();
  }

  absl::Status RegisterBuffer(void* data, size_t size) {
    return verbs_io_ == nullptr ? absl::OkStatus() : verbs_io_->RegisterBuffer(data, size);
  }
  absl::Status UnregisterBuffer(void* data) {
    return verbs_io_ == nullptr ? absl::OkStatus() : verbs_io_->UnregisterBuffer(data);
  }

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
  // Looks the keys up (leasing them) and caches what it finds.
  std::vector<absl::StatusOr<Placement>> LookupMany(std::span<const std::string_view> keys);

  // Where a get puts an object of `length` bytes: a span of exactly that
  // size, or an error for the item (buffer too small).
  using BufferFor =
      std::function<absl::StatusOr<std::span<uint8_t>>(size_t index, uint64_t length)>;
  // Gets every key into its buffer and returns each object's length: from a
  // cached location when there is one, else after a lookup; from the nearest
  // live copy, falling back to the others; bytes are returned only when they
  // match the object's checksum. A stale cached location, or a read that
  // fails everywhere, is retried after a fresh lookup.
  std::vector<absl::StatusOr<uint64_t>> GetMany(std::span<const std::string_view> keys,
                                                const BufferFor& buffer_for);
  absl::Status PinRequest(std::string_view key, bool prefix, bool unpin);
  absl::StatusOr<uint64_t> EvictRequest(std::string_view prefix);
  absl::Status DrainRequest(std::string_view node, bool undrain);
  void ForgetLocation(std::string_view key) { cache_.Erase(key); }
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
    s.location_cache_hits = cache_hits_.load();
    s.stale_cached_reads = stale_cached_reads_.load();
    s.replica_fallbacks = replica_fallbacks_.load();
    if (verbs_io_ != nullptr) {
      s.rdma_requests = verbs_io_->rdma_requests();
      s.tcp_requests = verbs_io_->fallback_requests();
      s.rdma_retries = verbs_io_->retries();
    } else {
      s.tcp_requests = s.node_requests;
    }
    if (shm_io_ != nullptr) {
      s.shm_requests = shm_io_->shm_requests();
      if (verbs_io_ == nullptr) s.tcp_requests = shm_io_->fallback_requests();
    }
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
  TcpNodeIo tcp_io_;
  std::unique_ptr<VerbsNodeIo> verbs_io_;  // null: no RDMA
  std::unique_ptr<ShmNodeIo> shm_io_;      // null: no same-host path
  NodeIo* node_io_;                        // the one in use
  std::atomic<uint64_t> puts_{0}, gets_{0}, bytes_put_{0}, bytes_got_{0};
  std::atomic<uint64_t> directory_requests_{0}, node_requests_{0}, checksum_failures_{0};

  // Reads each item from its current copy (cursor) and verifies it; items
  // that fail move to their next copy until one works or none is left.
  // `order[i]` lists item i's live copies, nearest first.
  std::vector<absl::Status> ReadCopies(std::span<const std::string_view> keys,
                                       const std::vector<size_t>& items,
                                       const std::vector<std::vector<const Placement*>>& order,
                                       const std::vector<std::span<uint8_t>>& buffers,
                                       const std::vector<uint64_t>& checksums);
  // Live copies, same host first, then the others in the directory's order.
  std::vector<const Placement*> ReadOrder(const Placement& p) const;

  const std::string host_;  // this machine, to prefer copies on it
  LocationCache<Placement> cache_;
  std::atomic<uint64_t> cache_hits_{0}, stale_cached_reads_{0}, replica_fallbacks_{0};
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
  if (options.replicas < 1 || options.replicas > 255) {
    results.assign(keys.size(),
                   absl::InvalidArgumentError(absl::StrFormat(
                       "BatchPut: %d replicas asked; 1 or more are needed", options.replicas)));
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
      Placement placement = FromWire(item->placement(), item->replicas());
      put_ids[i] = item->put_id();
      checksums[i] = Checksum(values[i]);
      for (const Placement* copy : CopiesOf(placement)) {
        by_node[copy->node_address].push_back(writes.size());
        writes.push_back({i, copy->node_id, copy->offset});
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

std::vector<absl::StatusOr<Placement>> Client::Impl::LookupMany(
    std::span<const std::string_view> keys) {
  std::vector<absl::StatusOr<Placement>> results(keys.size());
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
        Placement placement = FromWire(item->placement(), item->replicas());
        if (trust > absl::ZeroDuration()) cache_.Put(asked[j], placement, sent + trust);
        results[index[j]] = std::move(placement);
      } else {
        cache_.Erase(asked[j]);
        results[index[j]] = s;
      }
    }
  });
  return results;
}

std::vector<const Placement*> Client::Impl::ReadOrder(const Placement& p) const {
  std::vector<const Placement*> order;
  for (const Placement* copy : CopiesOf(p)) {
    if (copy->node_up && copy->node_host == host_) order.push_back(copy);
  }
  for (const Placement* copy : CopiesOf(p)) {
    if (copy->node_up && copy->node_host != host_) order.push_back(copy);
  }
  return order;
}

std::vector<absl::Status> Client::Impl::ReadCopies(
    std::span<const std::string_view> keys, const std::vector<size_t>& items,
    const std::vector<std::vector<const Placement*>>& order,
    const std::vector<std::span<uint8_t>>& buffers, const std::vector<uint64_t>& checksums) {
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
            ops.push_back({order[i][cursor[i]]->offset, buffers[i], checksums[i], &verified[i]});
          }
          absl::Status reply = ReadFromNode(address, ops);
          for (size_t k = first; k < last; ++k) {
            size_t i = node_items[k];
            if (!reply.ok()) {
              results[i] = absl::Status(
                  reply.code(), absl::StrFormat("reading '%s' from node %s: %s",
                                                PrintableKey(keys[i]), address, reply.message()));
            } else if (!verified[i] && Checksum(buffers[i]) != checksums[i]) {
              // Never hand out bytes that are not the committed object's: the
              // memory was reused (a stale location) or damaged.
              checksum_failures_.fetch_add(1, std::memory_order_relaxed);
              results[i] = absl::DataLossError(
                  absl::StrFormat("'%s' read from node %s does not match its checksum (version %u)",
                                  PrintableKey(keys[i]), address, order[i][cursor[i]]->version));
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
  std::vector<std::optional<Placement>> where(keys.size());
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
        if (std::optional<Placement> p = cache_.Get(keys[i], now)) {
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
      std::vector<absl::StatusOr<Placement>> found = LookupMany(lookup_keys);
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
    std::vector<std::vector<const Placement*>> order(keys.size());
    std::vector<std::span<uint8_t>> buffers(keys.size());
    std::vector<uint64_t> checksums(keys.size(), 0);
    std::vector<size_t> retry;
    for (size_t i : pending) {
      if (!where[i].has_value()) continue;
      const Placement& p = *where[i];
      order[i] = ReadOrder(p);
      if (order[i].empty()) {
        if (cached[i]) {
          retry.push_back(i);  // the directory may know of another copy
          continue;
        }
        std::vector<std::string> down;
        for (const Placement* copy : CopiesOf(p)) down.push_back(copy->node_address);
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
      checksums[i] = p.checksum;
      readable.push_back(i);
    }
    // 3. Read, verify, fall back across copies.
    std::vector<absl::Status> read = ReadCopies(keys, readable, order, buffers, checksums);
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
  for (std::string_view key : keys) cache_.Erase(key);
  InChunks(keys.size(), [&](size_t begin, size_t end) {
    auto [asked, index] = ValidKeys(keys, begin, end, results);
    if (asked.empty()) return;
    flatbuffers::FlatBufferBuilder fbb;
    auto list = BuildKeyList(fbb, asked);
    FinishMessage(fbb, wire::CreateRemove(fbb, list));
    auto reply = CallDirectory(fbb);
    const wire::StatusList* statuses =
        reply.ok() ? reply->message()->body_as_StatusList() : nullptr;
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
  state.pinned = r->pinned();
  state.leased = r->leased();
  state.evictions = r->evictions();
  state.held = r->held_bytes();
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
      node.draining = n->draining();
      node.pinned = n->pinned();
      node.leased = n->leased();
      node.evictions = n->evictions();
      node.held = n->held_bytes();
      node.node_reads = n->reads();
      node.node_writes = n->writes();
      node.node_bytes_read = n->bytes_read();
      node.node_bytes_written = n->bytes_written();
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
  RETURN_IF_ERROR(impl->SetUpTransport());
  impl->SetUpShm();
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
  std::vector<std::vector<uint8_t>> values(keys.size());
  auto lengths =
      impl_->GetMany(keys, [&](size_t i, uint64_t length) -> absl::StatusOr<std::span<uint8_t>> {
        values[i].resize(length);
        return std::span<uint8_t>(values[i]);
      });
  std::vector<absl::StatusOr<std::vector<uint8_t>>> results;
  results.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (lengths[i].ok()) {
      results.push_back(std::move(values[i]));
    } else {
      results.push_back(lengths[i].status());
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
  auto lengths =
      impl_->GetMany(keys, [&](size_t i, uint64_t length) -> absl::StatusOr<std::span<uint8_t>> {
        if (buffers[i].size() < length) {
          return absl::InvalidArgumentError(
              absl::StrFormat("buffer of %u bytes is too small for '%s' (%u bytes)",
                              buffers[i].size(), PrintableKey(keys[i]), length));
        }
        return buffers[i].first(length);
      });
  results.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (lengths[i].ok()) {
      results.push_back(static_cast<size_t>(*lengths[i]));
    } else {
      results.push_back(lengths[i].status());
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
  ObjectInfo info{p.node_id, p.node_address, p.node_up, p.length, p.version, p.checksum};
  for (const Placement* copy : CopiesOf(p)) {
    info.copy_node_ids.push_back(copy->node_id);
    info.copy_nodes_up.push_back(copy->node_up);
  }
  return info;
}

absl::StatusOr<PoolState> Client::Status() { return impl_->Status(); }

absl::Status Client::RegisterBuffer(void* data, size_t size) {
  return impl_->RegisterBuffer(data, size);
}

absl::Status Client::UnregisterBuffer(void* data) { return impl_->UnregisterBuffer(data); }

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
  FinishMessage(fbb,
                wire::CreateGetMetrics(fbb, static_cast<uint32_t>(std::max(0, history_seconds))));
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
      metrics.history.push_back(
          {s->unix_seconds(), s->puts(), s->hits(), s->misses(), s->removes(), s->evictions()});
    }
  }
  return metrics;
}

// ---------------------------------------------------------------- lifecycle

absl::Status Client::Impl::PinRequest(std::string_view key, bool prefix, bool unpin) {
  RETURN_IF_ERROR(ValidateKey(key));
  flatbuffers::FlatBufferBuilder fbb;
  auto k = fbb.CreateVector(reinterpret_cast<const uint8_t*>(key.data()), key.size());
  FinishMessage(fbb, wire::CreatePin(fbb, k, prefix, unpin));
  ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
  const wire::StatusList* r = reply.message()->body_as_StatusList();
  if (r == nullptr || r->items() == nullptr || r->items()->size() != 1) {
    return UnexpectedReply(unpin ? "Unpin" : "Pin");
  }
  return StatusFromWire(r->items()->Get(0));
}

absl::StatusOr<uint64_t> Client::Impl::EvictRequest(std::string_view prefix) {
  if (prefix.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError("evict prefix longer than a key can be");
  }
  flatbuffers::FlatBufferBuilder fbb;
  auto p = fbb.CreateVector(reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
  FinishMessage(fbb, wire::CreateEvict(fbb, p));
  ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
  const wire::EvictReply* r = reply.message()->body_as_EvictReply();
  if (r == nullptr) return UnexpectedReply("Evict");
  return r->evicted();
}

absl::Status Client::Impl::DrainRequest(std::string_view node, bool undrain) {
  // Polled until the node is empty. A drain that stays blocked (no room
  // elsewhere, objects with no live copy) without progress for this long is
  // reported; the node stays draining until Undrain.
  constexpr absl::Duration kPoll = absl::Milliseconds(100);
  constexpr absl::Duration kBlockedFor = absl::Seconds(3);
  if (node.empty()) return absl::InvalidArgumentError("drain: no node named");
  uint64_t last_used = UINT64_MAX;
  absl::Time progressed = absl::Now();
  while (true) {
    flatbuffers::FlatBufferBuilder fbb;
    auto name = fbb.CreateString(node.data(), node.size());
    FinishMessage(fbb, wire::CreateDrain(fbb, name, undrain));
    ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
    const wire::DrainReply* r = reply.message()->body_as_DrainReply();
    if (r == nullptr) return UnexpectedReply(undrain ? "Undrain" : "Drain");
    absl::Status blocked = StatusFromWire(r->status());
    if (absl::IsNotFound(blocked) && r->name() == nullptr) return blocked;  // no such node
    if (undrain || r->done()) return absl::OkStatus();
    absl::Time now = absl::Now();
    if (r->used() < last_used || r->moves_in_flight() > 0) {
      last_used = r->used();
      progressed = now;
    }
    if (!blocked.ok() && now - progressed > kBlockedFor) {
      return absl::Status(
          blocked.code(),
          absl::StrFormat("%s (%u objects, %u bytes still on %s; it stays "
                          "draining until undrained)",
                          blocked.message(), r->objects(), r->used(), AsStringView(r->name())));
    }
    absl::SleepFor(kPoll);
  }
}

absl::Status Client::Pin(std::string_view key_or_prefix, bool prefix) {
  return impl_->PinRequest(key_or_prefix, prefix, /*unpin=*/false);
}

absl::Status Client::Unpin(std::string_view key_or_prefix, bool prefix) {
  return impl_->PinRequest(key_or_prefix, prefix, /*unpin=*/true);
}

absl::Status Client::Drain(std::string_view node_name) {
  return impl_->DrainRequest(node_name, /*undrain=*/false);
}

absl::Status Client::Undrain(std::string_view node_name) {
  return impl_->DrainRequest(node_name, /*undrain=*/true);
}

absl::StatusOr<uint64_t> Client::Evict(std::string_view prefix) {
  return impl_->EvictRequest(prefix);
}

ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace unipool
