#include "unipool/directory/directory_service.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "authorize.h"
#include "unipool/common/fabric_codec.h"
#include "unipool/common/log.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/rdma_port.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// Reclaiming reservations and noticing dead nodes within a quarter second is
// plenty next to the default 30 s and 5 s timeouts.
constexpr absl::Duration kTickInterval = absl::Milliseconds(250);

// How often the commit line is logged while puts arrive.
constexpr absl::Duration kCommitLogInterval = absl::Seconds(10);

// Logs how many PutCommit calls shared each catalog write (commit groups)
// and each fsync of the log, every kCommitLogInterval while commits arrive,
// and once more when the service stops. Ticker thread only.
class CommitLogger {
 public:
  explicit CommitLogger(Directory* directory)
      : directory_(directory), since_(absl::Now()), syncs_(directory->catalog().syncs()) {}

  void Tick(bool stopping) {
    absl::Time now = absl::Now();
    if (!stopping && now - since_ < kCommitLogInterval) return;
    Directory::CommitCounts counts = directory_->commit_counts();
    uint64_t syncs = directory_->catalog().syncs();
    uint64_t calls = counts.calls - last_.calls;
    uint64_t writes = counts.writes - last_.writes;
    if (calls > 0) {
      LogInfo(
          "commits in the last %s: %u PutCommit calls in %u catalog writes, %u fsyncs of the log",
          absl::FormatDuration(absl::Trunc(now - since_, absl::Milliseconds(100))), calls, writes,
          syncs - syncs_);
    }
    last_ = counts;
    syncs_ = syncs;
    since_ = now;
  }

 private:
  Directory* const directory_;
  absl::Time since_;
  Directory::CommitCounts last_;
  uint64_t syncs_;
};

absl::Status RequireNoPayload(ServerConnection& conn) {
  if (conn.payload_bytes() != 0) {
    return absl::InvalidArgumentError("this request carries no payload");
  }
  return absl::OkStatus();
}

// Node ids one request may report unreachable; more is not a pool unipool
// serves, and the rest are ignored.
constexpr size_t kMaxReportedNodes = 256;

absl::Status CheckBatchSize(size_t items) {
  if (items > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrFormat("batch of %u items is over the limit of %u", items, kMaxBatchItems));
  }
  return absl::OkStatus();
}

absl::Status ReplyStatusList(ServerConnection& conn, const std::vector<absl::Status>& statuses) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Status>> items;
  items.reserve(statuses.size());
  for (const auto& s : statuses) items.push_back(StatusToWire(fbb, s));
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreateStatusList(fbb, vec));
  return conn.Reply(fbb);
}

// Whose quota a reservation counts against (ClientQuota): a token's tenant.
// Holders of the cluster key are trusted, and without a key there is no
// identity to hold to a quota (anyone may remove anything): not limited.
std::string QuotaOwner(const ServerConnection& conn) {
  const Principal& who = conn.principal();
  if (!who.authenticated || who.cluster_key) return "";
  return absl::StrFormat("'%s' (%s token)", PrintableKey(who.prefix),
                         absl::AsciiStrToLower(wire::EnumNameRole(who.role)));
}

// Tells the directory of the connection's tenant and its token's quotas
// (tenants.h); returns its reservation quota (0: the pool's share).
uint64_t LearnTenant(Directory* directory, const ServerConnection& conn) {
  const Principal& who = conn.principal();
  if (!who.authenticated || who.cluster_key || who.prefix.empty()) return 0;
  directory->LearnTenant(who.prefix, who.quota.storage_bytes, who.quota.pin_bytes);
  return who.quota.reservation_bytes;
}

// The id a put is held under (Committer::client_id). A token holder's
// client id is bound to its token (role and prefix), so another tenant that
// names the same id, or 0, holds a different one and can neither commit nor
// abort the put; a put started with 0 stays its tenant's. Holders of the
// cluster key, and peers of a directory without a key, are taken at their
// word.
uint64_t HolderId(const ServerConnection& conn, uint64_t client) {
  const Principal& who = conn.principal();
  if (!who.authenticated || who.cluster_key) return client;
  std::string bound = absl::StrFormat("unipool-put-holder %d %u:%s %u", static_cast<int>(who.role),
                                      who.prefix.size(), who.prefix, client);
  Secret mac = Mac(Secret{}, bound);
  uint64_t id = 0;
  std::memcpy(&id, mac.data(), sizeof id);
  return id == 0 ? 1 : id;
}

// One PutStartReplyItem per reservation (or its error).
std::vector<flatbuffers::Offset<wire::PutStartReplyItem>> ReservationItems(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<absl::StatusOr<Reservation>>& results) {
  std::vector<flatbuffers::Offset<wire::PutStartReplyItem>> items;
  items.reserve(results.size());
  for (const auto& result : results) {
    auto status = StatusToWire(fbb, result.status());
    if (!result.ok()) {
      items.push_back(wire::CreatePutStartReplyItem(fbb, status));
      continue;
    }
    WireCopies copies = EncodeObjectInfo(fbb, result->location);
    items.push_back(
        wire::CreatePutStartReplyItem(fbb, status, result->put_id, copies.first, copies.further));
  }
  return items;
}

}  // namespace

DirectoryService::DirectoryService(Directory* directory, ServerOptions server,
                                   TensorCatalogOptions tensor_options)
    : directory_(directory),
      tensor_options_(std::move(tensor_options)),
      server_(
          [&] {
            server.name = "unipool-directory";
            return std::move(server);
          }(),
          this),
      lifecycle_(directory),
      prober_(directory) {}

DirectoryService::~DirectoryService() { Stop(); }

absl::Status DirectoryService::Start(const std::string& listen_address) {
  ASSIGN_OR_RETURN(tensors_, TensorCatalog::Open(directory_, tensor_options_));
  RETURN_IF_ERROR(server_.Start(listen_address));
  ticker_ = std::thread([this] { TickLoop(); });
  lifecycle_.Start();
  prober_.Start();
  return absl::OkStatus();
}

void DirectoryService::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (ticker_.joinable()) ticker_.join();
  prober_.Stop();
  lifecycle_.Stop();
  server_.Stop();
}

void DirectoryService::TickLoop() {
  CommitLogger commits(directory_);
  while (!stop_.WaitForNotificationWithTimeout(kTickInterval)) {
    directory_->Tick();
    tensors_->Sweep();
    metrics_.SetEvictionsTotal(directory_->evictions());
    metrics_.Sample(absl::Now());
    commits.Tick(/*stopping=*/false);
  }
  commits.Tick(/*stopping=*/true);
}

absl::Status DirectoryService::Handle(ServerConnection& conn, const wire::Message& request) {
  RETURN_IF_ERROR(RequireNoPayload(conn));
  RETURN_IF_ERROR(AuthorizeDirectoryRequest(conn.principal(), request));
  if (const auto* reported = request.unreachable_nodes(); reported != nullptr) {
    std::vector<NodeId> ids(
        reported->begin(),
        reported->begin() + std::min<size_t>(reported->size(), kMaxReportedNodes));
    ReportUnreachable(conn, ids);
  }
  switch (request.body_type()) {
    case wire::Body::RegisterNode:
      return HandleRegister(conn, *request.body_as_RegisterNode());
    case wire::Body::Heartbeat:
      return HandleHeartbeat(conn, *request.body_as_Heartbeat());
    case wire::Body::FlashAnnounce:
      return HandleFlashAnnounce(conn, *request.body_as_FlashAnnounce());
    case wire::Body::PutStart:
      return HandlePutStart(conn, *request.body_as_PutStart());
    case wire::Body::PutCommit:
      return HandlePutCommit(conn, *request.body_as_PutCommit());
    case wire::Body::PutAbort:
      return HandlePutAbort(conn, *request.body_as_PutAbort());
    case wire::Body::Lookup:
      return HandleLookup(conn, *request.body_as_Lookup());
    case wire::Body::Exists:
      return HandleExists(conn, *request.body_as_Exists());
    case wire::Body::Remove:
      return HandleRemove(conn, *request.body_as_Remove());
    case wire::Body::GetStatus:
      return HandleStatus(conn);
    case wire::Body::StepDown:
      return HandleStepDown(conn);
    case wire::Body::FabricReport:
      return HandleFabricReport(conn, *request.body_as_FabricReport());
    case wire::Body::List:
      return HandleList(conn, *request.body_as_List());
    case wire::Body::GetMetrics:
      return HandleMetrics(conn, *request.body_as_GetMetrics());
    case wire::Body::Pin:
      return HandlePin(conn, *request.body_as_Pin());
    case wire::Body::Evict:
      return HandleEvict(conn, *request.body_as_Evict());
    case wire::Body::Drain:
      return HandleDrain(conn, *request.body_as_Drain());
    case wire::Body::TensorPublish:
      return HandleTensorPublish(conn, *request.body_as_TensorPublish());
    case wire::Body::TensorLookup:
      return HandleTensorLookup(conn, *request.body_as_TensorLookup());
    case wire::Body::TensorList:
      return HandleTensorList(conn, *request.body_as_TensorList());
    case wire::Body::TensorRemove:
      return HandleTensorRemove(conn, *request.body_as_TensorRemove());
    case wire::Body::ModelPin:
      return HandleModelPin(conn, *request.body_as_ModelPin());
    default:
      return absl::InvalidArgumentError(absl::StrFormat("the directory does not serve %s requests",
                                                        wire::EnumNameBody(request.body_type())));
  }
}

bool DirectoryService::IsQuick(const wire::Message& request) const {
  // Just after a restart, puts and lookups wait for the nodes to register.
  if (directory_->MayAwaitRestartedNodes()) return false;
  bool writes_wait_for_no_fsync = directory_->catalog().sync_mode() == SyncMode::kInterval;
  switch (request.body_type()) {
    case wire::Body::Lookup:
      // A lookup of a page on flash waits for a node to read it back.
      return !directory_->flash_in_use();
    case wire::Body::Exists:
      return true;
    case wire::Body::PutStart:
    case wire::Body::PutCommit:
    case wire::Body::PutAbort:
    case wire::Body::Remove:
      return writes_wait_for_no_fsync;
    default:
      return false;
  }
}

absl::Status DirectoryService::HandleRegister(ServerConnection& conn,
                                              const wire::RegisterNode& request) {
  NodeRegistration reg;
  reg.name = std::string(AsStringView(request.name()));
  reg.host = std::string(AsStringView(request.host()));
  reg.data_address = std::string(AsStringView(request.data_address()));
  reg.slab_id = request.slab_id();
  reg.slab_size = request.slab_size();
  reg.huge_pages = request.huge_pages();
  reg.identity = std::string(AsStringView(request.identity()));
  reg.pool_id = std::string(AsStringView(request.pool_id()));
  if (request.transports() != nullptr) {
    for (const auto* t : *request.transports()) reg.transports.emplace_back(AsStringView(t));
  }
  ASSIGN_OR_RETURN(reg.rdma_ports, RdmaPortsFromWire(request.rdma_ports()));
  reg.flash_capacity = request.flash_capacity();
  ASSIGN_OR_RETURN(RegistrationResult result, directory_->RegisterNode(reg));
  flatbuffers::FlatBufferBuilder fbb;
  auto pool = fbb.CreateString(result.pool_id);
  FinishMessage(fbb, wire::CreateRegisterNodeReply(fbb, result.node_id, result.readmitted,
                                                   result.objects_dropped, pool));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleFabricReport(ServerConnection& conn,
                                                  const wire::FabricReport& request) {
  ASSIGN_OR_RETURN(ClientFabric report, DecodeFabricReport(&request));
  directory_->RecordFabric(std::move(report));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleHeartbeat(ServerConnection& conn,
                                               const wire::Heartbeat& request) {
  NodeCounters counters{request.bytes_read(), request.bytes_written(), request.reads(),
                        request.writes(), DecodeFlashCounts(request.flash())};
  absl::StatusOr<std::vector<RdmaPortInfo>> ports = RdmaPortsFromWire(request.rdma_ports());
  if (!ports.ok()) return ports.status();
  absl::Status s = directory_->Heartbeat(request.node_id(), request.slab_id(), counters,
                                         request.rdma_link_down(),
                                         request.rdma_ports() != nullptr ? &*ports : nullptr);
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateHeartbeatReply(fbb, s.ok()));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleFlashAnnounce(ServerConnection& conn,
                                                   const wire::FlashAnnounce& request) {
  if (request.items() == nullptr) return absl::InvalidArgumentError("FlashAnnounce without items");
  RETURN_IF_ERROR(CheckBatchSize(request.items()->size()));
  std::vector<FlashPlan> pages;
  pages.reserve(request.items()->size());
  for (const wire::FlashItem* item : *request.items()) {
    pages.push_back({std::string(AsStringView(item->key())), item->version(), item->length(),
                     item->checksum()});
  }
  return ReplyStatusList(conn, directory_->AnnounceFlash(request.node_id(), pages));
}

absl::Status DirectoryService::HandlePutStart(ServerConnection& conn,
                                              const wire::PutStart& request) {
  if (request.items() == nullptr) return absl::InvalidArgumentError("PutStart without items");
  RETURN_IF_ERROR(CheckBatchSize(request.items()->size()));
  std::vector<PutRequest> puts;
  puts.reserve(request.items()->size());
  std::string owner = QuotaOwner(conn);
  uint64_t holder = HolderId(conn, request.client());
  uint64_t limit = LearnTenant(directory_, conn);
  for (const auto* item : *request.items()) {
    puts.push_back({AsStringView(item->key()), item->length(), item->replace(),
                    std::max<int>(1, item->replicas()), owner, holder, limit});
  }
  auto results = directory_->PutStart(puts);
  flatbuffers::FlatBufferBuilder fbb;
  auto vec = fbb.CreateVector(ReservationItems(fbb, results));
  FinishMessage(fbb, wire::CreatePutStartReply(fbb, vec, PutTimeoutMs()));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandlePutCommit(ServerConnection& conn,
                                               const wire::PutCommit& request) {
  if (request.items() == nullptr) return absl::InvalidArgumentError("PutCommit without items");
  RETURN_IF_ERROR(CheckBatchSize(request.items()->size()));
  std::vector<CommitRequest> commits;
  commits.reserve(request.items()->size());
  for (const auto* item : *request.items()) {
    CommitRequest commit{item->put_id(), item->checksum()};
    if (item->failed_nodes() != nullptr) {
      commit.failed_nodes.assign(item->failed_nodes()->begin(), item->failed_nodes()->end());
      ReportUnreachable(conn, commit.failed_nodes);
    }
    commit.key = AsStringView(item->key());
    commit.replace = item->replace();
    commits.push_back(std::move(commit));
  }
  // The pre-handed reservations asked for, at most a batch's worth.
  std::vector<ReserveShape> next;
  uint64_t asked = 0;
  if (request.reserve() != nullptr && request.client() != 0) {  // 0: none asked for
    for (const auto* shape : *request.reserve()) {
      uint32_t count = static_cast<uint32_t>(std::min<uint64_t>(
          shape->count(), kMaxBatchItems - std::min<uint64_t>(asked, kMaxBatchItems)));
      asked += count;
      next.push_back({shape->length(), std::max<int>(1, shape->replicas()), count});
    }
  }
  std::string owner = QuotaOwner(conn);
  Committer who{owner, HolderId(conn, request.client()), LearnTenant(directory_, conn)};
  std::vector<Reservation> reserved;
  std::vector<absl::Status> results = directory_->PutCommit(commits, who, next, &reserved);
  metrics_.CountPuts(std::count_if(results.begin(), results.end(), [](auto& s) { return s.ok(); }));
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Status>> statuses;
  statuses.reserve(results.size());
  for (const absl::Status& s : results) statuses.push_back(StatusToWire(fbb, s));
  auto status_vec = fbb.CreateVector(statuses);
  std::vector<absl::StatusOr<Reservation>> handed(reserved.begin(), reserved.end());
  auto reserved_vec = fbb.CreateVector(ReservationItems(fbb, handed));
  FinishMessage(fbb, wire::CreatePutCommitReply(fbb, status_vec, reserved_vec, PutTimeoutMs()));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandlePutAbort(ServerConnection& conn,
                                              const wire::PutAbort& request) {
  if (request.put_ids() != nullptr) {
    RETURN_IF_ERROR(CheckBatchSize(request.put_ids()->size()));
    std::vector<uint64_t> ids(request.put_ids()->begin(), request.put_ids()->end());
    std::string owner = QuotaOwner(conn);
    directory_->PutAbort(ids, Committer{owner, HolderId(conn, request.client())});
  }
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateAck(fbb));
  return conn.Reply(fbb);
}

void DirectoryService::ReportUnreachable(const ServerConnection& conn,
                                         std::span<const NodeId> ids) {
  // Nobody's word alone hides a node from the others, the cluster key's
  // included: the directory's own probe decides (NodeProber::CheckReports).
  prober_.CheckReports(ids);
}

uint32_t DirectoryService::PutTimeoutMs() const {
  return static_cast<uint32_t>(absl::ToInt64Milliseconds(directory_->put_timeout()));
}

absl::Status DirectoryService::HandleLookup(ServerConnection& conn, const wire::Lookup& request) {
  ASSIGN_OR_RETURN(auto keys, DecodeKeyList(request.keys()));
  // A prefix (GetPrefix) is answered at once, its flash half as flash
  // copies: the client reads both tiers in parallel (the node reads the
  // flash half while the memory half is sent), and the flash half is read
  // back into memory after the reply, for the next lookup. Other lookups
  // read their flash pages back first, then get them from memory
  // (bench/results/flash.md measures both).
  bool flash = directory_->flash_in_use();
  if (flash && !request.prefix()) PromoteFromFlash(keys, /*prefix=*/false);
  auto results = directory_->Lookup(keys, request.prefix());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::LookupReplyItem>> items;
  items.reserve(results.size());
  uint64_t hits = 0;
  for (const auto& result : results) hits += result.ok() ? 1 : 0;
  // A prefix lookup that stopped early missed the key it stopped at.
  uint64_t stopped = results.size() < keys.size() ? 1 : 0;
  metrics_.CountLookups(hits, results.size() - hits + stopped);
  for (const auto& result : results) {
    if (!result.ok()) {
      auto status = StatusToWire(fbb, result.status());
      items.push_back(wire::CreateLookupReplyItem(fbb, status));
      continue;
    }
    WireCopies copies = EncodeObjectInfo(fbb, *result);
    items.push_back(wire::CreateLookupReplyItem(fbb, 0, copies.first, copies.further));
  }
  auto vec = fbb.CreateVector(items);
  FinishMessage(
      fbb, wire::CreateLookupReply(
               fbb, vec, static_cast<uint32_t>(absl::ToInt64Milliseconds(directory_->lease()))));
  RETURN_IF_ERROR(conn.Reply(fbb));
  if (flash && request.prefix()) PromoteFromFlash(keys, /*prefix=*/true);
  return absl::OkStatus();
}

void DirectoryService::PromoteFromFlash(std::span<const std::string_view> keys, bool prefix) {
  std::vector<FlashPlan> plans = directory_->PlanPromotions(keys, prefix);
  if (plans.empty()) return;
  std::vector<absl::Status> results = flash_.Promote(plans);
  directory_->FinishPromotions(plans, results);
}

absl::Status DirectoryService::HandleExists(ServerConnection& conn, const wire::Exists& request) {
  ASSIGN_OR_RETURN(auto keys, DecodeKeyList(request.keys()));
  std::vector<bool> exists = directory_->Exists(keys);
  flatbuffers::FlatBufferBuilder fbb;
  auto vec = fbb.CreateVector(exists);
  FinishMessage(fbb, wire::CreateExistsReply(fbb, vec));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleRemove(ServerConnection& conn, const wire::Remove& request) {
  ASSIGN_OR_RETURN(auto keys, DecodeKeyList(request.keys()));
  std::vector<absl::Status> results = directory_->Remove(keys);
  metrics_.CountRemoves(
      std::count_if(results.begin(), results.end(), [](auto& s) { return s.ok(); }));
  return ReplyStatusList(conn, results);
}

// The refusal is a reply of its own: the admin's connection stays open.
absl::Status DirectoryService::HandleStepDown(ServerConnection& conn) {
  absl::Status accepted =
      step_down_accept_ ? step_down_accept_()
                        : absl::FailedPreconditionError(
                              "this directory is not replicated (started without --etcd): there "
                              "is no standby to hand over to; restart it instead");
  flatbuffers::FlatBufferBuilder fbb;
  if (!accepted.ok()) {
    BuildError(fbb, accepted);
    return conn.Reply(fbb);
  }
  FinishMessage(fbb, wire::CreateAck(fbb));
  absl::Status replied = conn.Reply(fbb);
  step_down_start_();
  return replied;
}

absl::Status DirectoryService::HandleStatus(ServerConnection& conn) {
  PoolState state = directory_->Status();
  // A tenant sees its own usage, not the other tenants' names and sizes.
  if (const Principal& who = conn.principal(); who.authenticated && !who.cluster_key) {
    std::erase_if(state.tenants, [&](const TenantState& t) {
      return t.prefix.substr(0, who.prefix.size()) != who.prefix;
    });
  }
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, EncodePoolState(fbb, state));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleList(ServerConnection& conn, const wire::List& request) {
  if (request.limit() == 0 || request.limit() > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrFormat("List limit %u is not in 1..%u", request.limit(), kMaxBatchItems));
  }
  ListResult page = directory_->List(AsStringView(request.prefix()),
                                     AsStringView(request.start_after()), request.limit());
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, EncodeListResult(fbb, page));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleMetrics(ServerConnection& conn,
                                             const wire::GetMetrics& request) {
  int seconds = static_cast<int>(
      std::min<uint32_t>(request.history_seconds(), DirectoryMetrics::kDefaultHistorySeconds));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, EncodePoolMetrics(fbb, metrics_.Snapshot(seconds)));
  return conn.Reply(fbb);
}

}  // namespace unipool
