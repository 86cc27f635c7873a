#include "unipool/directory/directory.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/auth.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"

namespace unipool {
namespace {

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

absl::Status FieldTooLong(std::string_view field, size_t bytes, size_t limit) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "node registration refused: %s of %u bytes (at most %u)", field, bytes, limit));
}

// A node's record stays within the bounds of records.h.
absl::Status ValidateRegistration(const NodeRegistration& reg) {
  if (reg.name.empty() || reg.data_address.empty()) {
    return absl::InvalidArgumentError("node registration refused: it needs a name and an address");
  }
  if (reg.slab_size < kAllocationAlignment || reg.slab_size > kMaxNodeSlabBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "node registration refused: slab of %u bytes (allowed %s to %s)", reg.slab_size,
        FormatSize(kAllocationAlignment), FormatSize(kMaxNodeSlabBytes)));
  }
  if (reg.name.size() > kMaxNodeNameBytes) {
    return FieldTooLong("name", reg.name.size(), kMaxNodeNameBytes);
  }
  if (reg.host.size() > kMaxNodeHostBytes) {
    return FieldTooLong("host", reg.host.size(), kMaxNodeHostBytes);
  }
  if (reg.data_address.size() > kMaxNodeAddressBytes) {
    return FieldTooLong("address", reg.data_address.size(), kMaxNodeAddressBytes);
  }
  if (reg.identity.size() > kMaxNodeIdentityBytes) {
    return FieldTooLong("identity", reg.identity.size(), kMaxNodeIdentityBytes);
  }
  if (reg.pool_id.size() > kMaxNodeNameBytes) {
    return FieldTooLong("pool id", reg.pool_id.size(), kMaxNodeNameBytes);
  }
  if (reg.transports.size() > kMaxNodeTransports) {
    return absl::InvalidArgumentError(
        absl::StrFormat("node registration refused: %u transports (at most %u)",
                        reg.transports.size(), kMaxNodeTransports));
  }
  for (const std::string& t : reg.transports) {
    if (t.size() > kMaxNodeTransportBytes) {
      return FieldTooLong("transport name", t.size(), kMaxNodeTransportBytes);
    }
  }
  return absl::OkStatus();
}

// What one List page may hold (keys, node names and per-item framing), so it
// always fits a frame's 64 MiB of meta.
constexpr size_t kMaxListPageBytes = 16u << 20;
constexpr size_t kListItemOverheadBytes = 64;

// Recency touches queued by lookups between two exclusive sections, at most
// (16 bytes each).
constexpr size_t kMaxQueuedTouches = size_t{1} << 20;

}  // namespace

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
                                                         .sync_interval = options.sync_interval}));
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
  restart_wait_until_ = absl::Now() + options_.restart_grace;
  for (NodeRecord& record : contents.nodes) {
    // Records from before last-seen times count from now.
    if (record.last_seen_unix_ms == 0) record.last_seen_unix_ms = UnixMillis(started_);
    auto node = std::unique_ptr<Node>(new Node{record, SlabAllocator(record.slab_size)});
    node->health = NodeHealth(options_.clock());
    next_node_id_ = std::max(next_node_id_, record.node_id + 1);
    nodes_[record.node_id] = std::move(node);
  }
  for (PinRecord& pin : contents.pins) pins_.Add(pin.key, pin.prefix);
  RETURN_IF_ERROR(RebuildObjects(contents.objects));
  RETURN_IF_ERROR(RebuildReservations(contents.pending, contents.held));
  LogInfo(
      "catalog of pool %s loaded: %u objects, %u reservations, %u held extents, %u pins, %u "
      "nodes, next version %u",
      contents.pool_id, objects_.size(), pending_.size(), held_.size(), pins_.size(), nodes_.size(),
      next_version_);
  return absl::OkStatus();
}

absl::Status Directory::ClaimExtent(NodeId id, uint64_t offset, uint64_t length,
                                    std::string_view what) {
  Node* node = FindNode(id);
  if (node == nullptr || !node->allocator.Claim(offset, length)) {
    return absl::DataLossError(absl::StrFormat(
        "catalog inconsistent: %s at node %u offset %u length %u overlaps or is out of range", what,
        id, offset, length));
  }
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
  int64_t lease_until = now_ms + absl::ToInt64Milliseconds(options_.lease);
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
    pending_.emplace(pending.put_id, std::move(pending));
  }
  for (const HeldExtent& held : held_extents) {
    RETURN_IF_ERROR(ClaimExtent(held.node_id, held.offset, held.length, "held extent"));
    next_version_ = std::max(next_version_, held.id + 1);
    FindNode(held.node_id)->held_bytes += RoundUpToAllocation(held.length);
    held_.emplace(held.id, held);
  }
  return absl::OkStatus();
}

Directory::Node* Directory::FindNode(NodeId id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

absl::StatusOr<RegistrationResult> Directory::RegisterNode(const NodeRegistration& reg) {
  RETURN_IF_ERROR(ValidateRegistration(reg));
  uint64_t ticket = 0;
  RegistrationResult result;
  {
    ExclusiveLock lock(this);
    ASSIGN_OR_RETURN(result, AdmitNode(reg, ticket));
  }
  RETURN_IF_ERROR(catalog_->AwaitDurable(ticket));
  return result;
}

absl::StatusOr<RegistrationResult> Directory::AdmitNode(const NodeRegistration& reg,
                                                        uint64_t& ticket) {
  RegistrationResult result;
  Node* node = nullptr;
  for (auto& [id, candidate] : nodes_) {
    if (candidate->record.name == reg.name) node = candidate.get();
  }
  RETURN_IF_ERROR(CheckNodeClaim(node, reg));
  CatalogBatch batch;
  if (node != nullptr && node->record.slab_id == reg.slab_id &&
      node->record.slab_size == reg.slab_size) {
    result.readmitted = true;
  } else if (node != nullptr) {
    // The node restarted with new memory: whatever it held is gone.
    result.objects_dropped = DropNodeContents(node->record.node_id, batch);
    node->allocator = SlabAllocator(reg.slab_size);
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
  if (record.identity_digest.empty()) record.identity_digest = NodeIdentityDigest(reg.identity);
  record.last_seen_unix_ms = UnixMillis(options_.clock());
  batch.PutNode(record);
  ASSIGN_OR_RETURN(ticket, catalog_->Write(batch));
  node->huge_pages = reg.huge_pages;
  node->rdma_ports = reg.rdma_ports;
  node->registered_since_start = true;
  // A readmitted slab's copies are checksummed before they are trusted again
  // (the service runs PlanVerification); readers verify every read anyway.
  node->unverified = result.readmitted && node->objects > 0;
  node->verifying = false;
  node->readmitted_copies =
      node->unverified ? CopiesToVerify(record.node_id) : std::vector<VerifyItem>{};
  NoteHeartbeat(record.node_id, options_.clock(), /*only_if_known=*/false);
  result.node_id = record.node_id;
  result.pool_id = pool_id_;
  if (!result.readmitted && result.objects_dropped > 0) {
    LogWarning("node %s came back with a new slab: %u objects lost (copies elsewhere kept)",
               reg.name, result.objects_dropped);
  }
  LogInfo("node %u %s registered: %s at %s, slab %s, %u copies%s%s", record.node_id, record.name,
          result.readmitted ? "readmitted" : "admitted", record.data_address,
          FormatSize(record.slab_size), node->objects, node->unverified ? " kept, to verify" : "",
          record.draining ? " (draining)" : "");
  LogTransition(*node, node->health.Registered(options_.clock()));
  return result;
}

absl::Status Directory::CheckNodeClaim(const Node* known, const NodeRegistration& reg) {
  if (!reg.pool_id.empty() && reg.pool_id != pool_id_) {
    LogWarning(
        "node %s refused: it belongs to pool %s, this catalog is pool %s (was --db lost or "
        "replaced?)",
        reg.name, reg.pool_id, pool_id_);
    return absl::FailedPreconditionError(absl::StrFormat(
        "this node belongs to pool %s, but the directory's catalog is pool %s: its --db was "
        "lost, emptied or replaced; restore it, or remove pool_id from this node's --state-dir to "
        "join the new pool as an empty node",
        reg.pool_id, pool_id_));
  }
  if (known == nullptr) {
    if (nodes_.size() >= kMaxNodes) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("node %s refused: the pool already has %u nodes, the most it takes",
                          reg.name, kMaxNodes));
    }
    return absl::OkStatus();
  }
  const std::string& digest = known->record.identity_digest;
  if (digest.empty() || BytesMatch(digest, NodeIdentityDigest(reg.identity))) {
    return absl::OkStatus();
  }
  LogWarning("registration as node %s from %s refused: another identity holds that name", reg.name,
             reg.data_address);
  return absl::FailedPreconditionError(absl::StrFormat(
      "node name '%s' belongs to a %s node at %s with another identity: give this node another "
      "--name, or its own --state-dir back (a forgotten name is free again after "
      "--forget-node-after)",
      reg.name, known->up() ? "live" : "known (down)", known->record.data_address));
}

uint64_t Directory::DropNodeContents(NodeId id, CatalogBatch& batch) {
  Node* node = FindNode(id);
  uint64_t lost = 0;
  std::vector<std::string> gone;
  for (auto it = objects_.begin(); it != objects_.end(); ++it) {
    ObjectEntry& entry = it->second;
    std::vector<ObjectCopy> copies = CopiesOf(entry);
    auto on_node = std::find_if(copies.begin(), copies.end(),
                                [&](const ObjectCopy& c) { return c.node_id == id; });
    if (on_node == copies.end()) continue;
    Account(entry, -1);
    copies.erase(on_node);
    if (copies.empty()) {
      batch.DeleteObject(it->first);
      gone.push_back(it->first);
      ++lost;
      continue;
    }
    SetCopies(entry, copies);
    Account(entry, +1);
    batch.PutObject(it->first, entry);
  }
  for (const std::string& key : gone) objects_.Erase(objects_.find(key));
  for (auto it = pending_.begin(); it != pending_.end();) {
    PendingPut& pending = it->second;
    std::vector<ObjectCopy> copies = CopiesOf(pending);
    auto on_node = std::find_if(copies.begin(), copies.end(),
                                [&](const ObjectCopy& c) { return c.node_id == id; });
    if (on_node == copies.end()) {
      ++it;
      continue;
    }
    copies.erase(on_node);
    if (copies.empty()) {
      batch.DeletePending(it->first);
      Unaccount(pending);
      pending_.erase(it++);
    } else {
      SetCopies(pending, copies);
      batch.PutPending(pending);
      ++it;
    }
  }
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.node_id == id) {
      batch.DeleteHeld(it->first);
      held_.erase(it++);
    } else {
      ++it;
    }
  }
  node->objects = 0;
  node->pinned = 0;
  node->held_bytes = 0;
  node->unverified = false;
  drains_.DropQueue(id);
  return lost;
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

absl::Status Directory::Heartbeat(NodeId node_id, uint64_t slab_id, const NodeCounters& counters,
                                  bool rdma_link_down,
                                  const std::vector<RdmaPortInfo>* rdma_ports) {
  // Before waiting for mu_: Tick must see the beat even if a catalog write
  // holds mu_ for a while.
  absl::Time arrived = options_.clock();
  NoteHeartbeat(node_id, arrived, /*only_if_known=*/true);
  ExclusiveLock lock(this);
  Node* node = FindNode(node_id);
  if (node == nullptr || node->record.slab_id != slab_id) {
    return absl::NotFoundError(
        absl::StrFormat("node %u with this slab is not registered", node_id));
  }
  NoteHeartbeat(node_id, arrived, /*only_if_known=*/false);  // now known to be real
  node->counters = counters;
  if (rdma_ports != nullptr) node->rdma_ports = *rdma_ports;
  std::optional<Transition> t = node->health.Heartbeat(rdma_link_down, arrived);
  LogTransition(*node, t);
  if (t.has_value() && t->to == Liveness::kSuspect) {
    absl::MutexLock probe_lock(&probe_mu_);
    ++probes_requested_;
  }
  return absl::OkStatus();
}

Capability Directory::Grant(const Node& node, CapabilityUse use, int64_t expires_unix_ms) const {
  if (!options_.capabilities.has_value()) return {};
  use.slab_id = node.record.slab_id;
  return options_.capabilities->Issue(use, expires_unix_ms);
}

CopyLocation Directory::CopyLocationOf(const ObjectCopy& copy, uint64_t length, wire::Access access,
                                       int64_t expires_unix_ms) {
  CopyLocation location;
  location.node_id = copy.node_id;
  location.offset = copy.offset;
  if (Node* node = FindNode(copy.node_id)) {
    location.node_address = node->record.data_address;
    location.node_host = node->record.host;
    location.node_up = node->up();
    location.capability =
        Grant(*node, {.offset = copy.offset, .length = length, .access = access}, expires_unix_ms);
  }
  return location;
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
    Node* node = FindNode(copy.node_id);
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

bool Directory::HasLiveCopy(const ObjectRecord& object) {
  for (const ObjectCopy& copy : CopiesOf(object)) {
    Node* node = FindNode(copy.node_id);
    if (node != nullptr && node->up()) return true;
  }
  return false;
}

absl::Status Directory::CheckPutRequest(const PutRequest& request) {
  RETURN_IF_ERROR(ValidateKey(request.key));
  if (request.length == 0 || request.length > kMaxObjectBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("object '%s' of %u bytes: size must be 1 byte to %s",
                        PrintableKey(request.key), request.length, FormatSize(kMaxObjectBytes)));
  }
  if (request.replicas < 1 || request.replicas > kMaxReplicas) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s': %d replicas asked; 1 to %d are possible", PrintableKey(request.key),
                        request.replicas, kMaxReplicas));
  }
  // An object whose every copy is on a down node cannot be read: it counts
  // as absent and may be put again.
  if (!request.replace) {
    auto existing = objects_.find(request.key);
    if (existing != objects_.end() && HasLiveCopy(existing->second)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "key '%s' already exists (objects are immutable; put with replace to overwrite)",
          PrintableKey(request.key)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Reservation> Directory::Reserve(const PutRequest& request, int64_t deadline_unix_ms,
                                               CatalogBatch& batch) {
  RETURN_IF_ERROR(CheckPutRequest(request));
  uint64_t quota_bytes = request.length * static_cast<uint64_t>(std::max(request.replicas, 1));
  RETURN_IF_ERROR(quota_.Check(request.owner, quota_bytes, LiveCapacity()));
  ASSIGN_OR_RETURN(std::vector<Node*> placed,
                   PlaceCopies(request.key, request.length, request.replicas, {}));
  PendingPut pending;
  pending.key = std::string(request.key);
  pending.length = request.length;
  pending.replace = request.replace;
  pending.deadline_unix_ms = deadline_unix_ms;
  pending.owner = std::string(request.owner);
  pending.quota_bytes = quota_bytes;
  pending.holder = request.client_id;
  return AddPending(std::move(pending), placed, batch);
}

Reservation Directory::AddPending(PendingPut pending, std::span<Node* const> placed,
                                  CatalogBatch& batch) {
  std::vector<ObjectCopy> copies;
  for (Node* node : placed) {
    copies.push_back({node->record.node_id, *node->allocator.Allocate(pending.length)});
  }
  pending.version = next_version_++;
  pending.put_id = NewPutId();
  quota_.Charge(pending.owner, pending.quota_bytes);
  if (pending.holder != 0 && pending.key.empty()) {
    Prehanded& out = prehanded_[pending.holder];
    ++out.count;
    out.bytes += pending.quota_bytes;
  }
  SetCopies(pending, copies);
  batch.PutPending(pending);
  Reservation reservation;
  reservation.put_id = pending.put_id;
  ObjectRecord shape;
  shape.length = pending.length;
  shape.version = pending.version;
  SetCopies(shape, copies);
  // The write capabilities last as long as the reservation.
  reservation.location = InfoOf(shape, wire::Access::Write, pending.deadline_unix_ms);
  pending_.emplace(pending.put_id, std::move(pending));
  return reservation;
}

uint64_t Directory::NewPutId() {
  // Drawn again on a clash with a live reservation (about 2^-64 per draw,
  // or an id from before ids were random): that would hand one client's put
  // to another.
  uint64_t id = RandomU64();
  while (pending_.contains(id)) id = RandomU64();
  return id;
}

void Directory::ReserveNext(const Committer& who, std::span<const ReserveShape> next,
                            int64_t deadline_unix_ms, CatalogBatch& batch,
                            std::vector<Reservation>& reserved) {
  if (who.client_id == 0) return;
  uint64_t capacity = LiveCapacity();
  uint64_t max_bytes = std::min(kMaxPrehandedBytesPerClient, capacity / kPrehandedCapacityShare);
  for (const ReserveShape& shape : next) {
    if (shape.length == 0 || shape.length > kMaxObjectBytes || shape.replicas < 1 ||
        shape.replicas > kMaxReplicas) {
      continue;  // what PutStart would refuse is not reserved either
    }
    uint64_t bytes = shape.length * static_cast<uint64_t>(shape.replicas);
    for (uint32_t n = 0; n < shape.count; ++n) {
      const Prehanded& out = prehanded_[who.client_id];
      if (out.count >= kMaxPrehandedPerClient || out.bytes + bytes > max_bytes ||
          !quota_.Check(who.owner, bytes, capacity).ok()) {
        if (out.count == 0) prehanded_.erase(who.client_id);
        return;  // caps reached: the client puts the rest through PutStart
      }
      // Never at the cost of an object: no eviction for a put not asked yet.
      absl::StatusOr<std::vector<Node*>> placed =
          PlaceCopies("", shape.length, shape.replicas, {}, /*may_evict=*/false);
      if (!placed.ok()) break;
      PendingPut pending;
      pending.length = shape.length;
      pending.deadline_unix_ms = deadline_unix_ms;
      pending.owner = std::string(who.owner);
      pending.quota_bytes = bytes;
      pending.holder = who.client_id;
      reserved.push_back(AddPending(std::move(pending), *placed, batch));
    }
  }
  if (auto out = prehanded_.find(who.client_id);
      out != prehanded_.end() && out->second.count == 0) {
    prehanded_.erase(out);
  }
}

std::vector<absl::StatusOr<Reservation>> Directory::PutStart(std::span<const PutRequest> requests) {
  std::vector<absl::StatusOr<Reservation>> results;
  results.reserve(requests.size());
  {
    // Shared, without the gate: a registration this waits for needs both.
    absl::ReaderMutexLock wait_lock(&mu_);
    AwaitRestartedNodes([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      int wanted = 1;
      for (const PutRequest& r : requests) wanted = std::max(wanted, r.replicas);
      int taking = 0;
      for (const auto& [id, node] : nodes_) taking += node->up() && !node->record.draining;
      return taking < wanted;
    });
  }
  ExclusiveLock lock(this);
  int64_t deadline = UnixMillis(options_.clock() + options_.put_timeout);
  CatalogBatch batch;
  for (const PutRequest& request : requests) results.push_back(Reserve(request, deadline, batch));
  if (batch.empty()) return results;
  batch.PutNextVersion(next_version_);
  // Not fsync'ed: a reservation only has to survive a crash of this process
  // (RocksDB's log is in the page cache); the commit that follows is synced.
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist reservations: %s", s.ToString());
    for (auto& result : results) {
      if (!result.ok()) continue;
      ReleasePending(result->put_id);
      result = s;
    }
  }
  return results;
}

void Directory::ReleasePending(uint64_t put_id) {
  auto it = pending_.find(put_id);
  if (it == pending_.end()) return;
  for (const ObjectCopy& copy : CopiesOf(it->second)) FreeCopy(copy, it->second.length);
  Unaccount(it->second);
  pending_.erase(it);
}

void Directory::Unaccount(const PendingPut& pending) {
  quota_.Refund(pending.owner, pending.quota_bytes);
  if (pending.holder == 0 || !pending.key.empty()) return;  // not pre-handed
  auto out = prehanded_.find(pending.holder);
  if (out == prehanded_.end()) return;
  out->second.count -= std::min<uint64_t>(out->second.count, 1);
  out->second.bytes -= std::min(out->second.bytes, pending.quota_bytes);
  if (out->second.count == 0) prehanded_.erase(out);
}

uint64_t Directory::LiveCapacity() const {
  uint64_t capacity = 0;
  for (const auto& [id, node] : nodes_) {
    if (node->up()) capacity += node->allocator.capacity();
  }
  return capacity;
}

absl::StatusOr<std::string_view> Directory::PrehandedKey(const PendingPut& pending,
                                                         const CommitRequest& request,
                                                         const Committer& who) {
  if (pending.holder == 0 || pending.holder != who.client_id || pending.owner != who.owner) {
    // After a restart nobody's claim can be checked: it waits for its
    // deadline (its holder may still be writing), and the put goes through
    // PutStart.
    return absl::NotFoundError(absl::StrFormat(
        "put %u is not a reservation of this client (or the directory restarted since it was "
        "handed out): put again",
        pending.put_id));
  }
  if (request.key.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "put %u was reserved without a key: its commit must name the key", pending.put_id));
  }
  RETURN_IF_ERROR(ValidateKey(request.key));
  return request.key;
}

absl::Status Directory::AcceptCommit(const CommitRequest& request, const Committer& who,
                                     size_t member, size_t index, int64_t now_ms,
                                     CommitPlan& plan) {
  auto it = pending_.find(request.put_id);
  if (it == pending_.end() || !plan.seen_ids.insert(request.put_id).second) {
    return absl::NotFoundError(absl::StrFormat(
        "put %u is unknown: it expired, was aborted or was already committed", request.put_id));
  }
  const PendingPut& pending = it->second;
  const bool prehanded = pending.key.empty();
  if (!prehanded && !request.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("put %u of '%s' was reserved with its key: its commit must not name one",
                        pending.put_id, PrintableKey(pending.key)));
  }
  if (!prehanded && pending.holder != 0 &&
      (pending.holder != who.client_id || pending.owner != who.owner)) {
    // Left alone: its own client commits it.
    return absl::NotFoundError(
        absl::StrFormat("put %u of '%s' was started by another client: only that client commits it",
                        pending.put_id, PrintableKey(pending.key)));
  }
  std::string_view key = pending.key;
  bool replace = pending.replace;
  if (prehanded) {
    absl::StatusOr<std::string_view> named = PrehandedKey(pending, request, who);
    if (absl::IsNotFound(named.status())) return named.status();  // not this client's: left alone
    if (!named.ok()) {
      plan.rejected_ids.push_back(pending.put_id);  // its holder is done with it
      return named.status();
    }
    key = *named;
    replace = request.replace;
  }
  if (pending.deadline_unix_ms < now_ms) {
    plan.rejected_ids.push_back(pending.put_id);
    return absl::NotFoundError(absl::StrFormat("put %u of '%s' expired before its commit",
                                               pending.put_id, PrintableKey(key)));
  }
  std::vector<ObjectCopy> written;
  std::vector<ObjectCopy> unwritten;
  for (const ObjectCopy& copy : CopiesOf(pending)) {
    bool failed = std::find(request.failed_nodes.begin(), request.failed_nodes.end(),
                            copy.node_id) != request.failed_nodes.end();
    (failed ? unwritten : written).push_back(copy);
  }
  if (written.empty()) {
    plan.rejected_ids.push_back(pending.put_id);
    return absl::UnavailableError(
        absl::StrFormat("put %u of '%s': no copy was written", pending.put_id, PrintableKey(key)));
  }
  // Judged against the map as it will be after the earlier items of the batch.
  auto existing = objects_.find(key);
  bool exists = (existing != objects_.end() && HasLiveCopy(existing->second)) ||
                plan.committed_keys.contains(key);
  if (exists && !replace) {
    plan.rejected_ids.push_back(pending.put_id);
    if (prehanded) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "key '%s' already exists (objects are immutable; put with replace to overwrite)",
          PrintableKey(key)));
    }
    return absl::AlreadyExistsError(
        absl::StrFormat("key '%s' was committed by another put first", PrintableKey(key)));
  }
  plan.committed_keys.insert(key);
  ObjectRecord object;
  object.length = pending.length;
  object.version = pending.version;
  object.checksum = request.checksum;
  object.created_unix_ms = now_ms;
  SetCopies(object, written);
  plan.batch.PutObject(key, object);
  plan.batch.DeletePending(pending.put_id);
  plan.accepted.push_back(
      {member, index, pending.put_id, std::string(key), std::move(object), std::move(unwritten)});
  return absl::OkStatus();
}

void Directory::PlanReplacements(CommitPlan& plan) {
  for (uint64_t id : plan.rejected_ids) plan.batch.DeletePending(id);
  // Objects replaced by this batch: their memory is held while leased.
  StringViewSet replaced;
  for (const CommitPlan::Accepted& a : plan.accepted) {
    std::string_view key = a.key;
    auto existing = objects_.find(key);
    if (existing == objects_.end() || !replaced.insert(key).second) continue;
    plan.releases.push_back(PlanRelease(CopiesOf(existing->second), existing->second.length,
                                        existing->second.lease_until_unix_ms(), plan.batch));
  }
}

void Directory::ApplyCommits(CommitPlan& plan, int64_t now_ms) {
  for (uint64_t id : plan.rejected_ids) ReleasePending(id);
  for (Release& release : plan.releases) ApplyRelease(release);
  absl::flat_hash_set<std::string> inserted_now;
  for (CommitPlan::Accepted& a : plan.accepted) {
    auto it = pending_.find(a.put_id);
    const uint64_t length = it->second.length;
    Unaccount(it->second);
    pending_.erase(it);
    for (const ObjectCopy& copy : a.unwritten) FreeCopy(copy, length);
    if (auto existing = objects_.find(a.key); existing != objects_.end()) {
      // An object older than this batch went with its release above; one
      // committed earlier in this batch was never visible: free it now.
      if (inserted_now.contains(a.key)) {
        for (const ObjectCopy& copy : CopiesOf(existing->second)) {
          FreeCopy(copy, existing->second.length);
        }
      }
      Account(existing->second, -1);
      objects_.Erase(existing);
    }
    inserted_now.insert(a.key);
    ObjectEntry& entry = objects_.Insert(a.key, a.object, pins_.Covers(a.key), now_ms);
    Account(entry, +1);
    QueueIfDraining(entry);
  }
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

void Directory::PutAbort(std::span<const uint64_t> put_ids, const Committer& who) {
  ExclusiveLock lock(this);
  CatalogBatch batch;
  std::vector<uint64_t> aborted;
  for (uint64_t id : put_ids) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    const PendingPut& pending = it->second;
    // A put is only its client's to give back (a pre-handed one after a
    // restart: nobody's).
    if (pending.key.empty() && pending.holder == 0) continue;
    if (pending.holder != 0 && pending.holder != who.client_id) continue;
    batch.DeletePending(id);
    aborted.push_back(id);
  }
  if (batch.empty()) return;
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist aborts: %s", s.ToString());
    return;  // they expire instead
  }
  for (uint64_t id : aborted) ReleasePending(id);
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
      if (it != objects_.end() && !HasLiveCopy(it->second)) return true;
    }
    return false;
  });
  int64_t now_ms = UnixMillis(options_.clock());
  int64_t lease_until = now_ms + absl::ToInt64Milliseconds(options_.lease);
  int64_t read_until = now_ms + absl::ToInt64Milliseconds(options_.read_capability_lifetime);
  std::vector<ObjectEntry*> touched;
  touched.reserve(keys.size());
  for (std::string_view key : keys) {
    auto it = objects_.find(key);
    if (prefix && (it == objects_.end() || !HasLiveCopy(it->second))) break;
    if (it == objects_.end()) {
      results.push_back(
          absl::NotFoundError(absl::StrFormat("key '%s' not found", PrintableKey(key))));
      continue;
    }
    ObjectEntry& entry = it->second;
    if (!HasLiveCopy(entry)) {
      // Every copy is on a node down or suspect: a miss (Exists says so too).
      std::vector<std::string> where;
      for (const ObjectCopy& copy : entry.copies) {
        if (Node* node = FindNode(copy.node_id)) where.push_back(node->record.data_address);
      }
      results.push_back(absl::NotFoundError(
          absl::StrFormat("key '%s' has no copy on a live node (its copies are on %s)",
                          PrintableKey(key), absl::StrJoin(where, ", "))));
      continue;
    }
    entry.ExtendLease(lease_until);
    touched.push_back(&entry);
    ObjectInfo info = InfoOf(entry, wire::Access::Read, read_until);
    info.lease = options_.lease;
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
      if (it != objects_.end() && !HasLiveCopy(it->second)) return true;
    }
    return false;
  });
  for (std::string_view key : keys) {
    auto it = objects_.find(key);
    // Only what can be read exists: every copy on a down node is as gone.
    results.push_back(it != objects_.end() && HasLiveCopy(it->second));
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
                                   it->second.lease_until_unix_ms(), batch));
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
    n.since_heartbeat = node->up() ? now - LastHeard(*node) : absl::ZeroDuration();
    n.counters = node->counters;
    n.draining = node->record.draining;
    n.pinned = node->pinned;
    n.leased = leased_on.contains(id) ? leased_on[id] : 0;
    n.evictions = node->evictions;
    n.held = node->held_bytes;
    status.capacity += n.capacity;
    status.used += n.used;
    status.held += n.held;
    status.nodes.push_back(std::move(n));
  }
  std::sort(status.nodes.begin(), status.nodes.end(),
            [](const NodeState& a, const NodeState& b) { return a.node_id < b.node_id; });
  status.objects = objects_.size();
  status.pending_puts = pending_.size();
  status.pinned = pinned_objects_;
  status.evictions = evictions();
  // Counted afresh when a node changed state since the last count, so that
  // zero never means "not counted yet".
  status.under_replicated = scanned_changes_ == liveness_changes_.load(std::memory_order_relaxed)
                                ? under_replicated_
                                : CountUnderReplicated();
  status.under_replicated += copies_to_remake_.size();
  status.copies_rereplicated = copies_rereplicated_;
  status.fabric = fabric_.Snapshot(now);
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
      if (auto it = nodes_.find(copy.node_id); it != nodes_.end()) {
        entry.nodes.push_back(it->second->record.name);
        bytes += it->second->record.name.size();
      }
    }
    bytes += key.size() + kListItemOverheadBytes;
    entry.pinned = object->pinned();
    page.entries.push_back(std::move(entry));
  }
  return page;
}

void Directory::ForgetGoneNodes(absl::Time now, CatalogBatch& batch) {
  // Last-seen times are refreshed in the catalog this often while a node is
  // up: a restarted directory then knows roughly when each node left.
  absl::Duration refresh = std::min(options_.forget_node_after / 4, absl::Hours(1));
  std::vector<NodeId> gone;
  for (auto& [id, node] : nodes_) {
    absl::Time seen = std::max(
        {absl::FromUnixMillis(node->record.last_seen_unix_ms), LastHeard(*node), started_});
    if (node->up()) {
      if (now - absl::FromUnixMillis(node->record.last_seen_unix_ms) > refresh) {
        node->record.last_seen_unix_ms = UnixMillis(now);
        batch.PutNode(node->record);
      }
    } else if (now - seen > options_.forget_node_after) {
      gone.push_back(id);
    }
  }
  for (NodeId id : gone) {
    Node* node = FindNode(id);
    uint64_t lost = DropNodeContents(id, batch);
    batch.DeleteNode(id);
    LogWarning(
        "node %u %s forgotten: not heard from for over %s; %u objects with no other copy "
        "dropped",
        id, node->record.name, absl::FormatDuration(options_.forget_node_after), lost);
    repairing_.erase(id);
    nodes_.erase(id);
    absl::MutexLock lock(&liveness_mu_);
    last_heard_.erase(id);
  }
}

void Directory::Tick() {
  ExclusiveLock lock(this);
  absl::Time now = options_.clock();
  for (auto& [id, node] : nodes_) {
    absl::Duration silence = now - LastHeard(*node);
    if (silence > options_.node_timeout) LogTransition(*node, node->health.TimedOut(silence, now));
  }
  int64_t now_ms = UnixMillis(now);
  // Nothing can be written once the catalog's folder is gone (it said so).
  if (!catalog_->FolderCheck().ok()) return;
  PlanRepairs(now_ms);
  std::vector<uint64_t> expired;
  std::vector<uint64_t> expired_held;
  CatalogBatch batch;
  ForgetGoneNodes(now, batch);
  for (const auto& [id, pending] : pending_) {
    if (pending.deadline_unix_ms < now_ms) {
      expired.push_back(id);
      batch.DeletePending(id);
    }
  }
  for (const auto& [id, held] : held_) {
    if (held.until_unix_ms < now_ms) {
      expired_held.push_back(id);
      batch.DeleteHeld(id);
    }
  }
  if (!batch.empty()) {
    if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
      LogError("cannot persist expired reservations: %s", s.ToString());
      return;
    }
    if (expired.empty() && expired_held.empty()) return EvictAboveWatermarks(now_ms);
    for (uint64_t id : expired) ReleasePending(id);
    for (uint64_t id : expired_held) ReleaseHeld(id);
    if (!expired.empty()) LogInfo("reclaimed %u expired reservations", expired.size());
  }
  EvictAboveWatermarks(now_ms);
}

}  // namespace unipool
