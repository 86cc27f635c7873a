#include "store/directory.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace unipool {
namespace {

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

absl::StatusOr<std::unique_ptr<Directory>> Directory::Open(const std::string& db_path,
                                                           DirectoryOptions options) {
  ASSIGN_OR_RETURN(auto catalog, Catalog::Open(db_path, options.sync));
  ASSIGN_OR_RETURN(CatalogContents contents, catalog->Load());
  std::unique_ptr<Directory> directory(new Directory(std::move(catalog), std::move(options)));
  RETURN_IF_ERROR(directory->Rebuild(std::move(contents)));
  return directory;
}

absl::Status Directory::Rebuild(CatalogContents contents) {
  absl::MutexLock lock(&mu_);
  absl::Time now = options_.clock();
  next_version_ = contents.next_version;
  for (NodeRecord& record : contents.nodes) {
    auto node = std::unique_ptr<Node>(new Node{record, SlabAllocator(record.slab_size)});
    next_node_id_ = std::max(next_node_id_, record.node_id + 1);
    nodes_[record.node_id] = std::move(node);
  }
  // Re-claim every committed object's and every reservation's space.
  auto claim = [&](NodeId id, uint64_t offset, uint64_t length, std::string_view what) {
    Node* node = FindNode(id);
    if (node == nullptr || !node->allocator.Claim(offset, length)) {
      return absl::DataLossError(absl::StrFormat(
          "catalog inconsistent: %s at node %u offset %u length %u overlaps or is out of range",
          what, id, offset, length));
    }
    return absl::OkStatus();
  };
  for (auto& [key, object] : contents.objects) {
    RETURN_IF_ERROR(claim(object.node_id, object.offset, object.length, "object"));
    next_version_ = std::max(next_version_, object.version + 1);
    FindNode(object.node_id)->objects++;
    objects_.emplace(std::move(key), object);
  }
  for (PendingPut& pending : contents.pending) {
    RETURN_IF_ERROR(claim(pending.node_id, pending.offset, pending.length, "reservation"));
    next_version_ = std::max(next_version_, pending.put_id + 1);
    pending_.emplace(pending.put_id, std::move(pending));
  }
  LogInfo("catalog loaded: %u objects, %u reservations, %u nodes, next version %u",
          objects_.size(), pending_.size(), nodes_.size(), next_version_);
  return absl::OkStatus();
}

Directory::Node* Directory::FindNode(NodeId id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

absl::StatusOr<RegistrationResult> Directory::RegisterNode(const NodeRegistration& reg) {
  if (reg.name.empty() || reg.data_address.empty() || reg.slab_size < kAllocationAlignment) {
    return absl::InvalidArgumentError(
        "node registration needs a name, a data address and a slab of at least 4 KiB");
  }
  if (reg.transports.size() > kMaxNodeTransports) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "node registration lists %u transports, more than %u", reg.transports.size(),
        kMaxNodeTransports));
  }
  absl::MutexLock lock(&mu_);
  RegistrationResult result;
  Node* node = nullptr;
  for (auto& [id, candidate] : nodes_) {
    if (candidate->record.name == reg.name) node = candidate.get();
  }
  CatalogBatch batch;
  if (node != nullptr && node->record.slab_id == reg.slab_id &&
      node->record.slab_size == reg.slab_size) {
    result.readmitted = true;
  } else if (node != nullptr) {
    // The node restarted with new memory: whatever it held is gone.
    result.objects_dropped = DropNodeContents(node->record.node_id, batch);
    node->allocator = SlabAllocator(reg.slab_size);
    LogWarning("node %s came back with a new slab: %u objects dropped", reg.name,
               result.objects_dropped);
  } else {
    auto fresh = std::unique_ptr<Node>(new Node{NodeRecord{}, SlabAllocator(reg.slab_size)});
    fresh->record.node_id = next_node_id_++;
    node = fresh.get();
    nodes_[node->record.node_id] = std::move(fresh);
  }
  NodeRecord& record = node->record;
  record.name = reg.name;
  record.host = reg.host;
  record.data_address = reg.data_address;
  record.slab_id = reg.slab_id;
  record.slab_size = reg.slab_size;
  record.transports = reg.transports;
  batch.PutNode(record);
  RETURN_IF_ERROR(catalog_->Write(batch, Durability::kConfigured));
  node->up = true;
  node->huge_pages = reg.huge_pages;
  NoteHeartbeat(record.node_id, options_.clock(), /*only_if_known=*/false);
  result.node_id = record.node_id;
  LogInfo("node %u %s registered: %s at %s, slab %s, %u objects%s", record.node_id, record.name,
          result.readmitted ? "readmitted" : "admitted", record.data_address,
          FormatSize(record.slab_size), node->objects,
          result.readmitted ? " kept" : "");
  return result;
}

uint64_t Directory::DropNodeContents(NodeId id, CatalogBatch& batch) {
  uint64_t dropped = 0;
  for (auto it = objects_.begin(); it != objects_.end();) {
    if (it->second.node_id == id) {
      batch.DeleteObject(it->first);
      objects_.erase(it++);
      ++dropped;
    } else {
      ++it;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.node_id == id) {
      batch.DeletePending(it->first);
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
  FindNode(id)->objects = 0;
  return dropped;
}

void Directory::NoteHeartbeat(NodeId id, absl::Time when, bool only_if_known) {
  absl::MutexLock lock(&liveness_mu_);
  auto it = last_heard_.find(id);
  if (it == last_heard_.end()) {
    if (only_if_known) return;  // never grow the map for made-up ids
    it = last_heard_.emplace(id, when).first;
  }
  it->second = std::max(it->second, when);
}

absl::Time Directory::LastHeard(const Node& node) {
  absl::MutexLock lock(&liveness_mu_);
  auto it = last_heard_.find(node.record.node_id);
  return it == last_heard_.end() ? absl::InfinitePast() : it->second;
}

absl::Status Directory::Heartbeat(NodeId node_id, uint64_t slab_id, const NodeCounters& counters) {
  // Before waiting for mu_: Tick must see the beat even if a catalog write
  // holds mu_ for a while.
  absl::Time arrived = options_.clock();
  NoteHeartbeat(node_id, arrived, /*only_if_known=*/true);
  absl::MutexLock lock(&mu_);
  Node* node = FindNode(node_id);
  if (node == nullptr || node->record.slab_id != slab_id) {
    return absl::NotFoundError(absl::StrFormat("node %u with this slab is not registered", node_id));
  }
  NoteHeartbeat(node_id, arrived, /*only_if_known=*/false);  // now known to be real
  if (!node->up) LogInfo("node %u %s is up again", node_id, node->record.name);
  node->up = true;
  node->counters = counters;
  return absl::OkStatus();
}

Directory::Node* Directory::PickNode(uint64_t length) {
  // Free-space aware: the live node with the most free bytes that has a
  // large enough extent.
  std::vector<Node*> candidates;
  for (auto& [id, node] : nodes_) {
    if (node->up && node->allocator.largest_free() >= RoundUpToAllocation(length)) {
      candidates.push_back(node.get());
    }
  }
  if (candidates.empty()) return nullptr;
  return *std::max_element(candidates.begin(), candidates.end(), [](Node* a, Node* b) {
    if (a->allocator.free_bytes() != b->allocator.free_bytes()) {
      return a->allocator.free_bytes() < b->allocator.free_bytes();
    }
    return a->record.node_id > b->record.node_id;  // ties: lowest id
  });
}

Location Directory::LocationOf(const ObjectRecord& object) {
  Location location;
  location.node_id = object.node_id;
  location.offset = object.offset;
  location.length = object.length;
  location.version = object.version;
  location.checksum = object.checksum;
  auto it = nodes_.find(object.node_id);
  if (it != nodes_.end()) {
    location.node_address = it->second->record.data_address;
    location.node_up = it->second->up;
  }
  return location;
}

std::vector<absl::StatusOr<Reservation>> Directory::PutStart(
    std::span<const PutRequest> requests) {
  std::vector<absl::StatusOr<Reservation>> results;
  results.reserve(requests.size());
  absl::MutexLock lock(&mu_);
  int64_t deadline = UnixMillis(options_.clock() + options_.put_timeout);
  CatalogBatch batch;
  std::vector<uint64_t> reserved;
  for (const PutRequest& request : requests) {
    if (absl::Status s = ValidateKey(request.key); !s.ok()) {
      results.push_back(s);
      continue;
    }
    if (request.length == 0 || request.length > kMaxObjectBytes) {
      results.push_back(absl::InvalidArgumentError(absl::StrFormat(
          "object '%s' of %u bytes: size must be 1 byte to %s", PrintableKey(request.key),
          request.length, FormatSize(kMaxObjectBytes))));
      continue;
    }
    if (!request.replace && objects_.contains(request.key)) {
      results.push_back(absl::AlreadyExistsError(absl::StrFormat(
          "key '%s' already exists (objects are immutable; put with replace to overwrite)",
          PrintableKey(request.key))));
      continue;
    }
    Node* node = PickNode(request.length);
    if (node == nullptr) {
      results.push_back(absl::ResourceExhaustedError(absl::StrFormat(
          "pool full: no live node has %s free in one piece for '%s'",
          FormatSize(RoundUpToAllocation(request.length)), PrintableKey(request.key))));
      continue;
    }
    uint64_t offset = *node->allocator.Allocate(request.length);
    PendingPut pending{next_version_++,    std::string(request.key), node->record.node_id, offset,
                       request.length,     request.replace,          deadline};
    batch.PutPending(pending);
    Reservation reservation;
    reservation.put_id = pending.put_id;
    reservation.location.node_id = node->record.node_id;
    reservation.location.node_address = node->record.data_address;
    reservation.location.node_up = true;
    reservation.location.offset = offset;
    reservation.location.length = request.length;
    reservation.location.version = pending.put_id;
    reserved.push_back(pending.put_id);
    pending_.emplace(pending.put_id, std::move(pending));
    results.push_back(std::move(reservation));
  }
  if (batch.empty()) return results;
  batch.PutNextVersion(next_version_);
  // Not fsync'ed: a reservation only has to survive a crash of this process
  // (RocksDB's log is in the page cache); the commit that follows is synced.
  if (absl::Status s = catalog_->Write(batch, Durability::kProcessCrash); !s.ok()) {
    LogError("cannot persist reservations: %s", s.ToString());
    for (uint64_t id : reserved) ReleasePending(id);
    for (auto& result : results) {
      if (result.ok()) result = s;
    }
  }
  return results;
}

void Directory::ReleasePending(uint64_t put_id) {
  auto it = pending_.find(put_id);
  if (it == pending_.end()) return;
  if (Node* node = FindNode(it->second.node_id)) {
    node->allocator.Free(it->second.offset, it->second.length);
  }
  pending_.erase(it);
}

void Directory::FreeObjectSpace(const ObjectRecord& object) {
  if (Node* node = FindNode(object.node_id)) {
    node->allocator.Free(object.offset, object.length);
    node->objects--;
  }
}

std::vector<absl::Status> Directory::PutCommit(std::span<const CommitRequest> requests) {
  std::vector<absl::Status> results(requests.size());
  absl::MutexLock lock(&mu_);
  int64_t now = UnixMillis(options_.clock());
  // Plan against the map as it will be after the earlier items of this batch.
  StringViewSet committed_in_batch;
  std::vector<size_t> accepted;
  std::vector<uint64_t> rejected_ids;
  absl::flat_hash_set<uint64_t> seen_ids;
  CatalogBatch batch;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto it = pending_.find(requests[i].put_id);
    if (it == pending_.end() || !seen_ids.insert(requests[i].put_id).second) {
      results[i] = absl::NotFoundError(absl::StrFormat(
          "put %u is unknown: it expired, was aborted or was already committed",
          requests[i].put_id));
      continue;
    }
    const PendingPut& pending = it->second;
    if (pending.deadline_unix_ms < now) {
      results[i] = absl::NotFoundError(absl::StrFormat(
          "put %u of '%s' expired before its commit", pending.put_id, PrintableKey(pending.key)));
      rejected_ids.push_back(pending.put_id);
      continue;
    }
    bool exists = objects_.contains(pending.key) || committed_in_batch.contains(pending.key);
    if (exists && !pending.replace) {
      results[i] = absl::AlreadyExistsError(absl::StrFormat(
          "key '%s' was committed by another put first", PrintableKey(pending.key)));
      rejected_ids.push_back(pending.put_id);
      continue;
    }
    committed_in_batch.insert(pending.key);
    ObjectRecord object{pending.node_id, pending.offset, pending.length,
                        pending.put_id,  requests[i].checksum, now};
    batch.PutObject(pending.key, object);
    batch.DeletePending(pending.put_id);
    accepted.push_back(i);
  }
  for (uint64_t id : rejected_ids) batch.DeletePending(id);
  if (!batch.empty()) {
    if (absl::Status s = catalog_->Write(batch, Durability::kConfigured); !s.ok()) {
      LogError("cannot persist commits: %s", s.ToString());
      for (size_t i : accepted) results[i] = s;
      return results;  // reservations stay; they expire or are retried
    }
  }
  for (uint64_t id : rejected_ids) ReleasePending(id);
  for (size_t i : accepted) {
    auto it = pending_.find(requests[i].put_id);
    PendingPut pending = std::move(it->second);
    pending_.erase(it);
    ObjectRecord object{pending.node_id, pending.offset, pending.length,
                        pending.put_id,  requests[i].checksum, now};
    auto [slot, inserted] = objects_.try_emplace(pending.key, object);
    if (!inserted) {
      FreeObjectSpace(slot->second);  // replaced
      slot->second = object;
    }
    FindNode(object.node_id)->objects++;
  }
  return results;
}

void Directory::PutAbort(std::span<const uint64_t> put_ids) {
  absl::MutexLock lock(&mu_);
  CatalogBatch batch;
  for (uint64_t id : put_ids) {
    if (pending_.contains(id)) batch.DeletePending(id);
  }
  if (batch.empty()) return;
  if (absl::Status s = catalog_->Write(batch, Durability::kProcessCrash); !s.ok()) {
    LogError("cannot persist aborts: %s", s.ToString());
    return;  // they expire instead
  }
  for (uint64_t id : put_ids) ReleasePending(id);
}

std::vector<absl::StatusOr<Location>> Directory::Lookup(std::span<const std::string_view> keys) {
  std::vector<absl::StatusOr<Location>> results;
  results.reserve(keys.size());
  absl::ReaderMutexLock lock(&mu_);
  for (std::string_view key : keys) {
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      results.push_back(absl::NotFoundError(absl::StrFormat("key '%s' not found", PrintableKey(key))));
    } else {
      results.push_back(LocationOf(it->second));
    }
  }
  return results;
}

std::vector<bool> Directory::Exists(std::span<const std::string_view> keys) {
  std::vector<bool> results;
  results.reserve(keys.size());
  absl::ReaderMutexLock lock(&mu_);
  for (std::string_view key : keys) results.push_back(objects_.contains(key));
  return results;
}

std::vector<absl::Status> Directory::Remove(std::span<const std::string_view> keys) {
  std::vector<absl::Status> results(keys.size());
  absl::MutexLock lock(&mu_);
  StringViewSet removed;
  CatalogBatch batch;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!objects_.contains(keys[i]) || removed.contains(keys[i])) {
      results[i] = absl::NotFoundError(absl::StrFormat("key '%s' not found", PrintableKey(keys[i])));
      continue;
    }
    removed.insert(keys[i]);
    batch.DeleteObject(keys[i]);
  }
  if (batch.empty()) return results;
  if (absl::Status s = catalog_->Write(batch, Durability::kConfigured); !s.ok()) {
    LogError("cannot persist removes: %s", s.ToString());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (results[i].ok()) results[i] = s;
    }
    return results;
  }
  for (std::string_view key : removed) {
    auto it = objects_.find(key);
    FreeObjectSpace(it->second);
    objects_.erase(it);
  }
  return results;
}

PoolStatus Directory::Status() {
  PoolStatus status;
  absl::ReaderMutexLock lock(&mu_);
  absl::Time now = options_.clock();
  for (auto& [id, node] : nodes_) {
    NodeStatus n;
    n.node_id = id;
    n.name = node->record.name;
    n.host = node->record.host;
    n.data_address = node->record.data_address;
    n.up = node->up;
    n.capacity = node->allocator.capacity();
    n.used = node->allocator.used();
    n.largest_free = node->allocator.largest_free();
    n.objects = node->objects;
    n.transports = node->record.transports;
    n.huge_pages = node->huge_pages;
    n.since_heartbeat = node->up ? now - LastHeard(*node) : absl::ZeroDuration();
    n.counters = node->counters;
    status.capacity += n.capacity;
    status.used += n.used;
    status.nodes.push_back(std::move(n));
  }
  std::sort(status.nodes.begin(), status.nodes.end(),
            [](const NodeStatus& a, const NodeStatus& b) { return a.node_id < b.node_id; });
  status.objects = objects_.size();
  status.pending_puts = pending_.size();
  return status;
}

ObjectList Directory::List(std::string_view prefix, std::string_view start_after, size_t limit) {
  ObjectList page;
  absl::ReaderMutexLock lock(&mu_);
  using Entry = std::pair<std::string_view, const ObjectRecord*>;
  std::vector<Entry> matches;
  for (const auto& [key, object] : objects_) {
    std::string_view k = key;
    if (k.substr(0, prefix.size()) == prefix && k > start_after) matches.emplace_back(k, &object);
  }
  auto by_key = [](const Entry& a, const Entry& b) { return a.first < b.first; };
  if (matches.size() > limit) {
    std::nth_element(matches.begin(), matches.begin() + limit, matches.end(), by_key);
    matches.resize(limit);
    page.more = true;
  }
  std::sort(matches.begin(), matches.end(), by_key);
  page.entries.reserve(matches.size());
  for (const auto& [key, object] : matches) {
    ListedObject entry;
    entry.key = std::string(key);
    entry.length = object->length;
    entry.version = object->version;
    entry.created_unix_ms = object->created_unix_ms;
    if (auto it = nodes_.find(object->node_id); it != nodes_.end()) {
      entry.nodes.push_back(it->second->record.name);
    }
    page.entries.push_back(std::move(entry));
  }
  return page;
}

void Directory::Tick() {
  absl::MutexLock lock(&mu_);
  absl::Time now = options_.clock();
  for (auto& [id, node] : nodes_) {
    absl::Duration silence = now - LastHeard(*node);
    if (node->up && silence > options_.node_timeout) {
      node->up = false;
      LogWarning("node %u %s marked down: no heartbeat for %s", id, node->record.name,
                 absl::FormatDuration(silence));
    }
  }
  int64_t now_ms = UnixMillis(now);
  std::vector<uint64_t> expired;
  CatalogBatch batch;
  for (const auto& [id, pending] : pending_) {
    if (pending.deadline_unix_ms < now_ms) {
      expired.push_back(id);
      batch.DeletePending(id);
    }
  }
  if (expired.empty()) return;
  if (absl::Status s = catalog_->Write(batch, Durability::kProcessCrash); !s.ok()) {
    LogError("cannot persist expired reservations: %s", s.ToString());
    return;
  }
  for (uint64_t id : expired) ReleasePending(id);
  LogInfo("reclaimed %u expired reservations", expired.size());
}

}  // namespace unipool
