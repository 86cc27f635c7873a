// Directory: start-up from the catalog, lookups (with their leases and
// capabilities), removes, status, listings and the periodic tick. The put
// is in directory_put.cc, nodes in directory_nodes.cc, and the parts that
// own state in their own headers (directory.h lists them).
#include "unipool/directory/directory.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "directory_internal.h"
#include "unipool/common/auth.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"

namespace unipool {
namespace {

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

// What one List page may hold (keys, node names and per-item framing), so it
// always fits a frame's 64 MiB of meta.
constexpr size_t kMaxListPageBytes = 16u << 20;
constexpr size_t kListItemOverheadBytes = 64;

// Recency touches queued by lookups between two exclusive sections, at most
// (16 bytes each).
constexpr size_t kMaxQueuedTouches = size_t{1} << 20;

}  // namespace

Directory::Directory(std::unique_ptr<Catalog> catalog, DirectoryOptions options)
    : options_(std::move(options)),
      hold_(options_),
      catalog_(std::move(catalog)),
      reservations_(options_.client_quota),
      placement_(options_.high_watermark, options_.low_watermark),
      repairs_(options_.rereplicate_bytes_per_second) {}

Directory::~Directory() = default;

absl::Duration Directory::lease() const {
  return options_.capabilities.has_value()
             ? std::min(options_.lease, options_.read_capability_lifetime)
             : options_.lease;
}

absl::StatusOr<std::unique_ptr<Directory>> Directory::Open(const std::string& db_path,
                                                           DirectoryOptions options) {
  if (!(options.low_watermark > 0 && options.low_watermark <= options.high_watermark &&
        options.high_watermark <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("watermarks must satisfy 0 < low <= high <= 1 (low %g, high %g)",
                        options.low_watermark, options.high_watermark));
  }
  if (options.lease < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the read lease cannot be negative");
  }
  ASSIGN_OR_RETURN(auto catalog, Catalog::Open(db_path, {.sync = options.sync,
                                                         .sync_interval = options.sync_interval,
                                                         .replication = options.replication}));
  ASSIGN_OR_RETURN(CatalogContents contents, catalog->Load());
  if (contents.pool_id.empty()) {
    // A new catalog (or one from before pool ids): the pool is born here.
    Nonce random = RandomNonce();
    contents.pool_id =
        absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(random.data()), 16));
    CatalogBatch batch;
    batch.PutPoolId(contents.pool_id);
    ASSIGN_OR_RETURN(uint64_t ticket, catalog->Write(batch));
    RETURN_IF_ERROR(catalog->AwaitDurable(ticket));
    LogInfo("catalog at %s has no pool id (%s): pool %s created", db_path,
            contents.nodes.empty() && contents.objects.empty() ? "new catalog" : "older catalog",
            contents.pool_id);
  }
  std::unique_ptr<Directory> directory(new Directory(std::move(catalog), std::move(options)));
  directory->pool_id_ = contents.pool_id;
  RETURN_IF_ERROR(directory->Rebuild(std::move(contents)));
  return directory;
}

absl::Status Directory::Rebuild(CatalogContents contents) {
  ExclusiveLock lock(this);
  next_version_ = contents.next_version;
  started_ = options_.clock();
  // Known nodes are down until they register again; puts and lookups wait a
  // little for them (AwaitRestartedNodes).
  nodes_.AwaitRestartedUntil(absl::Now() + options_.restart_grace);
  for (NodeRecord& record : contents.nodes) {
    // Records from before last-seen times count from now.
    if (record.last_seen_unix_ms == 0) record.last_seen_unix_ms = UnixMillis(started_);
    nodes_.Restore(record, started_);
  }
  for (PinRecord& pin : contents.pins) pins_.Add(pin.key, pin.prefix);
  RETURN_IF_ERROR(RebuildObjects(contents.objects));
  RETURN_IF_ERROR(RebuildReservations(contents.pending, contents.held));
  LogInfo(
      "catalog of pool %s loaded: %u objects, %u reservations, %u held extents, %u pins, %u "
      "nodes, next version %u",
      contents.pool_id, objects_.size(), reservations_.size(), held_.size(), pins_.size(),
      nodes_.size(), next_version_);
  return absl::OkStatus();
}

absl::Status Directory::RebuildObjects(std::vector<std::pair<std::string, ObjectRecord>>& objects) {
  int64_t now_ms = UnixMillis(options_.clock());
  // Oldest first, so that the recency lists start in commit order.
  std::sort(objects.begin(), objects.end(), [](const auto& a, const auto& b) {
    return a.second.created_unix_ms < b.second.created_unix_ms;
  });
  // Leases are not persisted: every object counts as leased for one lease
  // period, in case a reader was relying on one when the directory stopped.
  // So do write capabilities: their puts' ranges are held as long.
  int64_t lease_until =
      now_ms + absl::ToInt64Milliseconds(std::max(hold_.AfterLookup(), hold_.AfterReserve()));
  restart_grace_until_ms_ = lease_until;
  for (auto& [key, object] : objects) {
    absl::flat_hash_set<NodeId> nodes;
    for (const ObjectCopy& copy : CopiesOf(object)) {
      if (!nodes.insert(copy.node_id).second) {
        return absl::DataLossError(
            absl::StrFormat("catalog inconsistent: object '%s' has two copies on node %u",
                            PrintableKey(key), copy.node_id));
      }
      RETURN_IF_ERROR(ClaimExtent(copy.node_id, copy.offset, object.length, "object"));
    }
    next_version_ = std::max(next_version_, object.version + 1);
    if (!object.flash.empty()) flash_in_use_.store(true, std::memory_order_relaxed);
    if (objects_.contains(key)) return absl::DataLossError("catalog inconsistent: duplicate key");
    ObjectEntry& entry =
        objects_.Insert(key, object, pins_.Covers(key), std::min(object.created_unix_ms, now_ms));
    entry.set_lease_until_unix_ms(lease_until);
    Account(entry, +1);
  }
  return absl::OkStatus();
}

absl::Status Directory::RebuildReservations(std::vector<PendingPut>& pending_puts,
                                            const std::vector<HeldExtent>& held_extents) {
  for (PendingPut& pending : pending_puts) {
    for (const ObjectCopy& copy : CopiesOf(pending)) {
      RETURN_IF_ERROR(ClaimExtent(copy.node_id, copy.offset, pending.length, "reservation"));
    }
    next_version_ = std::max(next_version_, pending.version + 1);
    reservations_.Restore(std::move(pending));
  }
  for (const HeldExtent& held : held_extents) {
    RETURN_IF_ERROR(ClaimExtent(held.node_id, held.offset, held.length, "held extent"));
    next_version_ = std::max(next_version_, held.id + 1);
    held_.Add(held, nodes_);
  }
  return absl::OkStatus();
}

absl::Status Directory::ClaimExtent(NodeId id, uint64_t offset, uint64_t length,
                                    std::string_view what) {
  NodeEntry* node = nodes_.Find(id);
  if (node == nullptr || !node->allocator.Claim(offset, length)) {
    return absl::DataLossError(absl::StrFormat(
        "catalog inconsistent: %s at node %u offset %u length %u overlaps or is out of range", what,
        id, offset, length));
  }
  return absl::OkStatus();
}

std::vector<absl::StatusOr<ObjectInfo>> Directory::Lookup(std::span<const std::string_view> keys,
                                                          bool prefix) {
  std::vector<absl::StatusOr<ObjectInfo>> results;
  results.reserve(keys.size());
  // Shared: lookups run side by side. A lookup extends the object's lease
  // (an atomic) and queues its recency touch for the next exclusive section.
  absl::ReaderMutexLock lock(&mu_);
  AwaitRestartedNodes([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (std::string_view key : keys) {
      auto it = objects_.find(key);
      if (it != objects_.end() && !HasLiveCopy(it->second) && !HasLiveFlash(it->second)) {
        return true;
      }
    }
    return false;
  });
  int64_t now_ms = UnixMillis(options_.clock());
  int64_t lease_until = now_ms + absl::ToInt64Milliseconds(hold_.AfterLookup());
  int64_t read_until = now_ms + absl::ToInt64Milliseconds(options_.read_capability_lifetime);
  std::vector<ObjectEntry*> touched;
  touched.reserve(keys.size());
  for (std::string_view key : keys) {
    auto it = objects_.find(key);
    if (prefix &&
        (it == objects_.end() || (!HasLiveCopy(it->second) && !HasLiveFlash(it->second)))) {
      break;
    }
    if (it == objects_.end()) {
      results.push_back(
          absl::NotFoundError(absl::StrFormat("key '%s' not found", PrintableKey(key))));
      continue;
    }
    ObjectEntry& entry = it->second;
    if (!HasLiveCopy(entry) && HasLiveFlash(entry)) {
      // On flash, and not read back into memory (no room for it, or another
      // lookup is reading it back): the node serves it from flash.
      results.push_back(FlashInfoOf(entry, read_until));
      continue;
    }
    if (!HasLiveCopy(entry)) {
      // Every copy is on a node down or suspect: a miss (Exists says so too).
      std::vector<std::string> where;
      for (const ObjectCopy& copy : entry.copies) {
        if (NodeEntry* node = nodes_.Find(copy.node_id)) where.push_back(node->record.data_address);
      }
      results.push_back(absl::NotFoundError(
          absl::StrFormat("key '%s' has no copy on a live node (its copies are on %s)",
                          PrintableKey(key), absl::StrJoin(where, ", "))));
      continue;
    }
    entry.ExtendLease(lease_until);
    touched.push_back(&entry);
    ObjectInfo info = InfoOf(entry, wire::Access::Read, read_until);
    info.lease = lease();
    results.push_back(std::move(info));
  }
  QueueTouches(touched, now_ms);
  return results;
}

void Directory::QueueTouches(std::span<ObjectEntry* const> entries, int64_t now_ms) {
  if (entries.empty()) return;
  absl::MutexLock lock(&touch_mu_);
  // Past the cap (lookups only, for a long while) recency is approximate;
  // leases, which are what protects readers, are exact.
  size_t room = kMaxQueuedTouches - std::min(kMaxQueuedTouches, touches_.size());
  for (size_t i = 0; i < entries.size() && i < room; ++i) touches_.push_back({entries[i], now_ms});
}

void Directory::ApplyTouches() {
  std::vector<QueuedTouch> touches;
  {
    absl::MutexLock lock(&touch_mu_);
    if (touches_.empty()) return;
    touches.swap(touches_);
  }
  for (const QueuedTouch& touch : touches) objects_.Touch(*touch.entry, touch.unix_ms);
}

std::vector<bool> Directory::Exists(std::span<const std::string_view> keys) {
  std::vector<bool> results;
  results.reserve(keys.size());
  absl::ReaderMutexLock lock(&mu_);
  AwaitRestartedNodes([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (std::string_view key : keys) {
      auto it = objects_.find(key);
      if (it != objects_.end() && !HasLiveCopy(it->second) && !HasLiveFlash(it->second)) {
        return true;
      }
    }
    return false;
  });
  for (std::string_view key : keys) {
    auto it = objects_.find(key);
    // Only what can be read exists: every copy on a down node is as gone. A
    // copy on a live node's flash is read back by a lookup: it exists.
    results.push_back(it != objects_.end() &&
                      (HasLiveCopy(it->second) || HasLiveFlash(it->second)));
  }
  return results;
}

std::vector<bool> Directory::Known(std::span<const std::string_view> keys) {
  std::vector<bool> results;
  results.reserve(keys.size());
  absl::ReaderMutexLock lock(&mu_);
  for (std::string_view key : keys) results.push_back(objects_.find(key) != objects_.end());
  return results;
}

bool Directory::HasLiveCopy(const ObjectRecord& object) {
  for (const ObjectCopy& copy : CopiesOf(object)) {
    NodeEntry* node = nodes_.Find(copy.node_id);
    if (node != nullptr && node->up()) return true;
  }
  return false;
}

ObjectInfo Directory::InfoOf(const ObjectRecord& object, wire::Access access,
                             int64_t expires_unix_ms) {
  ObjectInfo info;
  info.length = object.length;
  info.version = object.version;
  info.checksum = object.checksum;
  info.copies.reserve(object.copies.size());
  // Only copies on up nodes: a reader never waits on a node known down or
  // suspect. (All of them when none is up; lookups refuse those first.)
  for (const ObjectCopy& copy : object.copies) {
    NodeEntry* node = nodes_.Find(copy.node_id);
    if (node != nullptr && node->up()) {
      info.copies.push_back(CopyLocationOf(copy, object.length, access, expires_unix_ms));
    }
  }
  if (info.copies.empty()) {
    for (const ObjectCopy& copy : object.copies) {
      info.copies.push_back(CopyLocationOf(copy, object.length, access, expires_unix_ms));
    }
  }
  return info;
}

CopyLocation Directory::CopyLocationOf(const ObjectCopy& copy, uint64_t length, wire::Access access,
                                       int64_t expires_unix_ms) {
  CopyLocation location;
  location.node_id = copy.node_id;
  location.offset = copy.offset;
  if (NodeEntry* node = nodes_.Find(copy.node_id)) {
    location.node_address = node->record.data_address;
    location.node_host = node->record.host;
    location.node_up = node->up();
    location.capability =
        Grant(*node, {.offset = copy.offset, .length = length, .access = access}, expires_unix_ms);
  }
  return location;
}

Capability Directory::Grant(const NodeEntry& node, CapabilityUse use,
                            int64_t expires_unix_ms) const {
  if (!options_.capabilities.has_value()) return {};
  use.slab_id = node.record.slab_id;
  return options_.capabilities->Issue(use, expires_unix_ms);
}

std::vector<absl::Status> Directory::Remove(std::span<const std::string_view> keys) {
  std::vector<absl::Status> results(keys.size());
  uint64_t ticket = 0;
  {
    ExclusiveLock lock(this);
    ticket = RemoveObjects(keys, results);
  }
  FailOkResults(catalog_->AwaitDurable(ticket), "removes", results);
  return results;
}

uint64_t Directory::RemoveObjects(std::span<const std::string_view> keys,
                                  std::vector<absl::Status>& results) {
  StringViewSet removed;
  CatalogBatch batch;
  std::vector<Release> releases;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = objects_.find(keys[i]);
    if (it == objects_.end() || removed.contains(keys[i])) {
      results[i] =
          absl::NotFoundError(absl::StrFormat("key '%s' not found", PrintableKey(keys[i])));
      continue;
    }
    removed.insert(keys[i]);
    batch.DeleteObject(keys[i]);
    releases.push_back(PlanRelease(CopiesOf(it->second), it->second.length,
                                   it->second.hold_until_unix_ms(), batch));
  }
  if (batch.empty()) return 0;
  absl::StatusOr<uint64_t> written = catalog_->Write(batch);
  if (!written.ok()) {
    LogError("cannot persist removes: %s", written.status().ToString());
    for (absl::Status& result : results) {
      if (result.ok()) result = written.status();
    }
    return 0;
  }
  for (Release& release : releases) ApplyRelease(release);
  for (std::string_view key : removed) {
    auto it = objects_.find(key);
    Account(it->second, -1);
    objects_.Erase(it);
  }
  return *written;
}

void Directory::FailOkResults(const absl::Status& durable, std::string_view what,
                              std::vector<absl::Status>& results) {
  if (durable.ok()) return;
  // Rare (a failing disk): the change is in the log and applied, but cannot
  // be promised to survive a machine crash; the caller hears so.
  LogError("cannot fsync %s: %s", what, durable.ToString());
  for (absl::Status& result : results) {
    if (result.ok()) result = durable;
  }
}

PoolState Directory::Status() {
  PoolState status;
  // Exclusive: the leased count walks the recency lists, which need the
  // lookups' queued touches applied.
  ExclusiveLock lock(this);
  absl::Time now = options_.clock();
  int64_t now_ms = UnixMillis(now);
  // Leased objects: only recently used ones can be (a lease starts at a
  // lookup, which is a use), so walk each recency list from its hot end.
  absl::flat_hash_map<NodeId, uint64_t> leased_on;
  int64_t recent = now_ms - absl::ToInt64Milliseconds(options_.lease);
  for (ObjectEntry* e : {objects_.HottestEvictable(), objects_.HottestPinned()}) {
    for (; e != nullptr; e = ObjectTable::Colder(*e)) {
      if (e->last_access_unix_ms < recent && !InRestartGrace(now_ms)) break;
      if (e->lease_until_unix_ms() <= now_ms) continue;
      ++status.leased;
      for (const ObjectCopy& copy : CopiesOf(*e)) ++leased_on[copy.node_id];
    }
  }
  for (auto& [id, node] : nodes_) {
    NodeState n;
    n.node_id = id;
    n.name = node->record.name;
    n.host = node->record.host;
    n.data_address = node->record.data_address;
    n.up = node->up();
    n.suspect = node->health.state() == Liveness::kSuspect;
    n.capacity = node->allocator.capacity();
    n.used = node->allocator.used();
    n.largest_free = node->allocator.largest_free();
    n.objects = node->objects;
    n.transports = node->record.transports;
    n.huge_pages = node->huge_pages;
    n.rdma_ports = node->rdma_ports;
    n.since_heartbeat = node->up() ? now - heard_.LastHeard(id) : absl::ZeroDuration();
    n.counters = node->counters;
    n.draining = node->record.draining;
    n.pinned = node->pinned;
    n.leased = leased_on.contains(id) ? leased_on[id] : 0;
    n.evictions = node->evictions;
    n.held = node->held_bytes;
    n.flash = node->flash;
    status.capacity += n.capacity;
    status.used += n.used;
    status.held += n.held;
    status.nodes.push_back(std::move(n));
  }
  std::sort(status.nodes.begin(), status.nodes.end(),
            [](const NodeState& a, const NodeState& b) { return a.node_id < b.node_id; });
  status.objects = objects_.size();
  status.pending_puts = reservations_.size();
  status.pinned = pinned_objects_;
  status.evictions = evictions();
  // Counted afresh when a node changed state since the last count, so that
  // zero never means "not counted yet".
  status.under_replicated =
      repairs_.UnderReplicated(nodes_.liveness_changes()).value_or(CountUnderReplicated());
  status.under_replicated += repairs_.remakes_owed();
  status.copies_rereplicated = repairs_.copies_rereplicated();
  status.fabric = fabric_.Snapshot(now);
  for (const TenantUsage& t : tenants_.Usage()) {
    status.tenants.push_back({t.prefix, t.limits.storage_bytes, t.limits.pin_bytes, t.objects,
                              t.stored_bytes, t.pinned_bytes});
  }
  if (options_.replication != nullptr) options_.replication->Describe(status);
  return status;
}

ListResult Directory::List(std::string_view prefix, std::string_view start_after, size_t limit) {
  ListResult page;
  absl::ReaderMutexLock lock(&mu_);
  using Entry = std::pair<std::string_view, const ObjectEntry*>;
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
  size_t bytes = 0;
  for (const auto& [key, object] : matches) {
    // A page always fits a frame: past kMaxListPageBytes of keys and node
    // names, the rest waits for the next page.
    if (bytes > kMaxListPageBytes) {
      page.more = true;
      break;
    }
    ListEntry entry;
    entry.key = std::string(key);
    entry.length = object->length;
    entry.version = object->version;
    entry.created_unix_ms = object->created_unix_ms;
    for (const ObjectCopy& copy : CopiesOf(*object)) {
      if (const NodeEntry* node = nodes_.Find(copy.node_id)) {
        entry.nodes.push_back(node->record.name);
        bytes += node->record.name.size();
      }
    }
    bytes += key.size() + kListItemOverheadBytes;
    entry.pinned = object->pinned();
    page.entries.push_back(std::move(entry));
  }
  return page;
}

void Directory::Tick() {
  ExclusiveLock lock(this);
  absl::Time now = options_.clock();
  MarkSilentNodesDown(now);
  int64_t now_ms = UnixMillis(now);
  // Nothing can be written once the catalog's folder is gone (it said so).
  if (!catalog_->FolderCheck().ok()) return;
  PlanRepairs(now_ms);
  CatalogBatch batch;
  ForgetGoneNodes(now, batch);
  std::vector<uint64_t> expired = reservations_.ExpiredBy(now_ms);
  std::vector<Release> releases;
  for (uint64_t id : expired) {
    batch.DeletePending(id);
    releases.push_back(PlanPendingRelease(*reservations_.Find(id), batch));
  }
  std::vector<uint64_t> expired_held = held_.ExpiredBy(now_ms);
  for (uint64_t id : expired_held) batch.DeleteHeld(id);
  if (!batch.empty()) {
    if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
      LogError("cannot persist expired reservations: %s", s.ToString());
      return;
    }
    for (uint64_t id : expired_held) held_.Release(id, nodes_);
    for (uint64_t id : expired) reservations_.Take(id);
    for (const Release& release : releases) ApplyRelease(release);
    if (!expired.empty()) LogInfo("reclaimed %u expired reservations", expired.size());
  }
  EvictAboveWatermarks(now_ms);
}

}  // namespace unipool
