#include "unipool/common/pool_codec.h"

#include <algorithm>
#include <string>
#include <vector>

#include "unipool/common/capability.h"
#include "unipool/common/fabric_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/rdma_port.h"

namespace unipool {
namespace {

std::vector<std::string> DecodeStrings(
    const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* strings) {
  std::vector<std::string> out;
  if (strings == nullptr) return out;
  out.reserve(strings->size());
  for (const flatbuffers::String* s : *strings) out.emplace_back(AsStringView(s));
  return out;
}

uint64_t NonNegativeMs(absl::Duration d) {
  return static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

flatbuffers::Offset<wire::FlashTierInfo> EncodeFlashTier(flatbuffers::FlatBufferBuilder& fbb,
                                                         const NodeState& n) {
  if (n.counters.flash.capacity == 0 && n.flash.objects == 0) return 0;
  auto store = EncodeFlashCounts(fbb, n.counters.flash);
  return wire::CreateFlashTierInfo(fbb, n.flash.objects, n.flash.bytes, n.flash.demotions,
                                   n.flash.promotions, n.flash.drops, store);
}

flatbuffers::Offset<wire::NodeInfo> EncodeNode(flatbuffers::FlatBufferBuilder& fbb,
                                               const NodeState& n) {
  auto flash = EncodeFlashTier(fbb, n);
  auto name = fbb.CreateString(n.name);
  auto host = fbb.CreateString(n.host);
  auto address = fbb.CreateString(n.data_address);
  auto transports = fbb.CreateVectorOfStrings(n.transports);
  auto ports = RdmaPortsToWire(fbb, n.rdma_ports);
  return wire::CreateNodeInfo(fbb, n.node_id, name, host, address, n.up, n.capacity, n.used,
                              n.largest_free, n.objects, transports, n.huge_pages,
                              NonNegativeMs(n.since_heartbeat), n.draining, n.pinned, n.leased,
                              n.evictions, n.held, n.counters.bytes_read, n.counters.bytes_written,
                              n.counters.reads, n.counters.writes, n.suspect, ports, flash);
}

}  // namespace

flatbuffers::Offset<wire::FlashCounts> EncodeFlashCounts(flatbuffers::FlatBufferBuilder& fbb,
                                                         const FlashStoreCounts& c) {
  return wire::CreateFlashCounts(fbb, c.bytes, c.objects, c.capacity, c.demotions, c.refused,
                                 c.hits, c.promotions, c.misses, c.lru_drops, c.bad_pages,
                                 c.write_failures, c.recovered);
}

FlashStoreCounts DecodeFlashCounts(const wire::FlashCounts* c) {
  if (c == nullptr) return {};
  return {.capacity = c->capacity(),
          .bytes = c->bytes(),
          .objects = c->objects(),
          .demotions = c->demotions(),
          .refused = c->refused(),
          .hits = c->hits(),
          .promotions = c->promotions(),
          .misses = c->misses(),
          .lru_drops = c->lru_drops(),
          .bad_pages = c->bad_pages(),
          .write_failures = c->write_failures(),
          .recovered = c->recovered()};
}

namespace {

NodeState DecodeNode(const wire::NodeInfo& n) {
  NodeState node;
  node.node_id = n.node_id();
  node.name = std::string(AsStringView(n.name()));
  node.host = std::string(AsStringView(n.host()));
  node.data_address = std::string(AsStringView(n.data_address()));
  node.up = n.up();
  node.suspect = n.suspect();
  node.capacity = n.capacity();
  node.used = n.used();
  node.largest_free = n.largest_free();
  node.objects = n.objects();
  node.transports = DecodeStrings(n.transports());
  node.huge_pages = n.huge_pages();
  node.since_heartbeat =
      absl::Milliseconds(std::min<uint64_t>(n.last_heartbeat_ms_ago(), INT64_MAX / 2));
  node.draining = n.draining();
  node.pinned = n.pinned();
  node.leased = n.leased();
  node.evictions = n.evictions();
  node.held = n.held_bytes();
  node.counters = {n.bytes_read(), n.bytes_written(), n.reads(), n.writes()};
  if (const wire::FlashTierInfo* flash = n.flash(); flash != nullptr) {
    node.flash = {flash->objects(), flash->bytes(), flash->demotions(), flash->promotions(),
                  flash->drops()};
    node.counters.flash = DecodeFlashCounts(flash->store());
  }
  // The directory checked them when the node sent them.
  if (absl::StatusOr<std::vector<RdmaPortInfo>> ports = RdmaPortsFromWire(n.rdma_ports());
      ports.ok()) {
    node.rdma_ports = *std::move(ports);
  }
  return node;
}

flatbuffers::Offset<wire::Placement> EncodeCopy(flatbuffers::FlatBufferBuilder& fbb,
                                                const ObjectInfo& info, const CopyLocation& copy) {
  auto address = fbb.CreateString(copy.node_address);
  auto host = fbb.CreateString(copy.node_host);
  wire::Capability capability = EncodeCapability(copy.capability);
  return wire::CreatePlacement(fbb, copy.node_id, address, copy.offset, info.length, info.version,
                               info.checksum, copy.node_up, host,
                               copy.capability.present() ? &capability : nullptr, copy.on_flash);
}

CopyLocation DecodeCopy(const wire::Placement& p) {
  return {p.node_id(),
          std::string(AsStringView(p.node_address())),
          std::string(AsStringView(p.node_host())),
          p.node_up(),
          p.offset(),
          DecodeCapability(p.capability()),
          p.on_flash()};
}

constexpr bool SameRole(DirectoryRole ours, wire::DirectoryRole theirs) {
  return static_cast<int>(ours) == static_cast<int>(theirs);
}
static_assert(SameRole(DirectoryRole::kLeader, wire::DirectoryRole::Leader) &&
              SameRole(DirectoryRole::kStandby, wire::DirectoryRole::Standby) &&
              SameRole(DirectoryRole::kUnreachable, wire::DirectoryRole::Unreachable));

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::DirectoryInfo>>>
EncodeDirectories(flatbuffers::FlatBufferBuilder& fbb, const std::vector<DirectoryState>& all) {
  std::vector<flatbuffers::Offset<wire::DirectoryInfo>> items;
  for (const DirectoryState& d : all) {
    items.push_back(wire::CreateDirectoryInfo(
        fbb, fbb.CreateString(d.address), fbb.CreateString(d.replication_address),
        static_cast<wire::DirectoryRole>(d.role), d.term, d.position, d.lag));
  }
  return fbb.CreateVector(items);
}

// A role this build does not know (a newer leader's) reads as unreachable.
std::vector<DirectoryState> DecodeDirectories(
    const flatbuffers::Vector<flatbuffers::Offset<wire::DirectoryInfo>>* all) {
  std::vector<DirectoryState> directories;
  if (all == nullptr) return directories;
  for (const wire::DirectoryInfo* d : *all) {
    DirectoryRole role = d->role() <= wire::DirectoryRole::MAX
                             ? static_cast<DirectoryRole>(d->role())
                             : DirectoryRole::kUnreachable;
    directories.push_back({std::string(AsStringView(d->address())),
                           std::string(AsStringView(d->replication_address())), role, d->term(),
                           d->position(), d->lag()});
  }
  return directories;
}

}  // namespace

flatbuffers::Offset<wire::StatusReply> EncodePoolState(flatbuffers::FlatBufferBuilder& fbb,
                                                       const PoolState& state) {
  std::vector<flatbuffers::Offset<wire::NodeInfo>> nodes;
  nodes.reserve(state.nodes.size());
  for (const NodeState& n : state.nodes) nodes.push_back(EncodeNode(fbb, n));
  auto vec = fbb.CreateVector(nodes);
  std::vector<flatbuffers::Offset<wire::FabricReport>> reports;
  for (const ClientFabric& f : state.fabric) reports.push_back(EncodeFabricReport(fbb, f));
  auto fabric = fbb.CreateVector(reports);
  std::vector<flatbuffers::Offset<wire::TenantInfo>> tenant_items;
  for (const TenantState& t : state.tenants) {
    auto prefix =
        fbb.CreateVector(reinterpret_cast<const uint8_t*>(t.prefix.data()), t.prefix.size());
    tenant_items.push_back(wire::CreateTenantInfo(fbb, prefix, t.storage_quota, t.pin_quota,
                                                  t.objects, t.stored, t.pinned));
  }
  auto tenants = fbb.CreateVector(tenant_items);
  auto directories = EncodeDirectories(fbb, state.directories);
  return wire::CreateStatusReply(fbb, vec, state.objects, state.pending_puts, state.capacity,
                                 state.used, state.pinned, state.leased, state.evictions,
                                 state.held, state.under_replicated, state.copies_rereplicated,
                                 fabric, tenants, directories, state.unreplicated);
}

PoolState DecodePoolState(const wire::StatusReply& r) {
  PoolState state;
  state.objects = r.objects();
  state.pending_puts = r.pending_puts();
  state.capacity = r.capacity();
  state.used = r.used();
  state.pinned = r.pinned();
  state.leased = r.leased();
  state.evictions = r.evictions();
  state.held = r.held_bytes();
  state.under_replicated = r.under_replicated();
  state.copies_rereplicated = r.copies_rereplicated();
  if (r.nodes() != nullptr) {
    state.nodes.reserve(r.nodes()->size());
    for (const wire::NodeInfo* n : *r.nodes()) state.nodes.push_back(DecodeNode(*n));
  }
  if (r.fabric() != nullptr) {
    for (const wire::FabricReport* f : *r.fabric()) {
      if (absl::StatusOr<ClientFabric> report = DecodeFabricReport(f); report.ok()) {
        state.fabric.push_back(*std::move(report));
      }
    }
  }
  if (r.tenants() != nullptr) {
    for (const wire::TenantInfo* t : *r.tenants()) {
      state.tenants.push_back({std::string(AsStringView(t->prefix())), t->storage_quota(),
                               t->pin_quota(), t->objects(), t->stored(), t->pinned()});
    }
  }
  state.directories = DecodeDirectories(r.directories());
  state.unreplicated = r.unreplicated();
  return state;
}

flatbuffers::Offset<wire::ListReply> EncodeListResult(flatbuffers::FlatBufferBuilder& fbb,
                                                      const ListResult& list) {
  std::vector<flatbuffers::Offset<wire::ListItem>> items;
  items.reserve(list.entries.size());
  for (const ListEntry& e : list.entries) {
    auto key = fbb.CreateVector(reinterpret_cast<const uint8_t*>(e.key.data()), e.key.size());
    auto nodes = fbb.CreateVectorOfStrings(e.nodes);
    items.push_back(
        wire::CreateListItem(fbb, key, e.length, e.version, e.created_unix_ms, nodes, e.pinned));
  }
  auto vec = fbb.CreateVector(items);
  return wire::CreateListReply(fbb, vec, list.more);
}

ListResult DecodeListResult(const wire::ListReply& r) {
  ListResult result;
  result.more = r.more();
  if (r.items() == nullptr) return result;
  result.entries.reserve(r.items()->size());
  for (const wire::ListItem* item : *r.items()) {
    result.entries.push_back({std::string(AsStringView(item->key())), item->length(),
                              item->version(), item->created_unix_ms(),
                              DecodeStrings(item->nodes()), item->pinned()});
  }
  return result;
}

flatbuffers::Offset<wire::MetricsReply> EncodePoolMetrics(flatbuffers::FlatBufferBuilder& fbb,
                                                          const PoolMetrics& m) {
  std::vector<wire::MetricsSecond> seconds;
  seconds.reserve(m.history.size());
  for (const PoolMetrics::Second& s : m.history) {
    seconds.emplace_back(s.unix_seconds, s.puts, s.hits, s.misses, s.removes, s.evictions);
  }
  auto vec = fbb.CreateVectorOfStructs(seconds);
  return wire::CreateMetricsReply(fbb, m.uptime_ms, m.puts, m.hits, m.misses, m.removes,
                                  m.evictions, vec);
}

PoolMetrics DecodePoolMetrics(const wire::MetricsReply& r) {
  PoolMetrics m;
  m.uptime_ms = r.uptime_ms();
  m.puts = r.puts();
  m.hits = r.hits();
  m.misses = r.misses();
  m.removes = r.removes();
  m.evictions = r.evictions();
  if (r.history() != nullptr) {
    m.history.reserve(r.history()->size());
    for (const wire::MetricsSecond* s : *r.history()) {
      m.history.push_back(
          {s->unix_seconds(), s->puts(), s->hits(), s->misses(), s->removes(), s->evictions()});
    }
  }
  return m;
}

WireCopies EncodeObjectInfo(flatbuffers::FlatBufferBuilder& fbb, const ObjectInfo& info) {
  WireCopies out;
  out.first = EncodeCopy(fbb, info, info.copies.at(0));
  if (info.copies.size() > 1) {
    std::vector<flatbuffers::Offset<wire::Placement>> further;
    for (size_t i = 1; i < info.copies.size(); ++i) {
      further.push_back(EncodeCopy(fbb, info, info.copies[i]));
    }
    out.further = fbb.CreateVector(further);
  }
  return out;
}

ObjectInfo DecodeObjectInfo(
    const wire::Placement* first,
    const flatbuffers::Vector<flatbuffers::Offset<wire::Placement>>* further, uint32_t lease_ms) {
  ObjectInfo info;
  info.lease = absl::Milliseconds(lease_ms);
  if (first == nullptr) return info;
  info.length = first->length();
  info.version = first->version();
  info.checksum = first->checksum();
  info.copies.push_back(DecodeCopy(*first));
  if (further != nullptr) {
    for (const wire::Placement* p : *further) info.copies.push_back(DecodeCopy(*p));
  }
  return info;
}

}  // namespace unipool
