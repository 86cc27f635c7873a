// Connect, the transports, and the public Client calls (thin wrappers over
// Client::Impl, whose jobs live in put_path.cc, get_path.cc and
// key_requests.cc).
#include "unipool/client.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client_impl.h"
#include "unipool/common/fabric_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

std::string LocalHostName() {
  char name[256] = "";
  gethostname(name, sizeof name - 1);
  return name;
}

const char* PolicyName(RdmaPolicy policy) {
  switch (policy) {
    case RdmaPolicy::kAuto:
      return "auto";
    case RdmaPolicy::kRC:
      return "rc";
    case RdmaPolicy::kUC:
      return "uc";
    case RdmaPolicy::kOff:
      return "off";
  }
  return "?";
}

// Never 0 (which asks for no pre-handed reservations).
uint64_t RandomClientId() {
  std::random_device random;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{random()} << 32) ^ random();
  return id;
}

}  // namespace

const char* SdkVersion() { return UNIPOOL_VERSION; }

absl::StatusOr<RdmaPolicy> ParseRdmaPolicy(std::string_view name) {
  if (name == "auto") return RdmaPolicy::kAuto;
  if (name == "rc") return RdmaPolicy::kRC;
  if (name == "uc") return RdmaPolicy::kUC;
  if (name == "off" || name == "tcp") return RdmaPolicy::kOff;
  return absl::InvalidArgumentError(
      absl::StrFormat("rdma must be auto, rc, uc or off, not '%s'", name));
}

int CopyThreadCount(int asked) {
  if (asked >= 1) return asked;
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores, 1, kMaxCopyThreads);
}

Client::Impl::Impl(const ClientOptions& options, ClientSecurity security, std::string host)
    : options_(options),
      pool_(ConnectionOptions{.peer_name = options.name,
                              .role = wire::Role::Client,
                              .connect_timeout = options.connect_timeout,
                              .io_timeout = options.io_timeout,
                              .credential = std::move(security.credential),
                              .tls = std::move(security.tls)},
            options.max_idle_connections),
      tcp_io_(&pool_),
      node_io_(&tcp_io_),
      host_(host.empty() ? LocalHostName() : std::move(host)),
      cache_(options.location_cache_entries),
      client_id_(RandomClientId()),
      views_(std::make_unique<ViewRegistry>(
          options.max_view_bytes,
          [this](std::span<const std::string_view> keys) { return LookupMany(keys); })) {}

Client::Impl::~Impl() {
  std::vector<uint64_t> held = stock_.Clear();
  for (size_t first = 0; first < held.size(); first += kMaxBatchItems) {
    std::vector<uint64_t> ids(held.begin() + first,
                              held.begin() + std::min(held.size(), first + kMaxBatchItems));
    flatbuffers::FlatBufferBuilder fbb;
    auto vec = fbb.CreateVector(ids);
    FinishMessage(fbb, wire::CreatePutAbort(fbb, vec, client_id_));
    // Once, without waiting for a restarting directory.
    if (!pool_.Call(options_.directory, fbb).ok()) return;
  }
}

absl::Status Client::Impl::SetUpTransports() {
  const RdmaPolicy rdma = options_.rdma;
  if (rdma != RdmaPolicy::kOff) {
    VerbsOptions verbs;
    verbs.devices = options_.rdma_devices.empty() ? RdmaDeviceNames("", options_.rdma_device)
                                                  : options_.rdma_devices;
    verbs.mode = rdma == RdmaPolicy::kUC ? RdmaMode::kUC : RdmaMode::kRC;
    auto created = VerbsNodeIo::Create(verbs, pool_.options(), &tcp_io_);
    if (created.ok()) {
      verbs_io_ = std::move(*created);
      node_io_ = verbs_io_.get();
    } else if (rdma != RdmaPolicy::kAuto) {
      return absl::FailedPreconditionError(
          absl::StrFormat("rdma=%s requested: %s", PolicyName(rdma), created.status().message()));
    }  // kAuto without a device here: TCP
  }
  // Same-host path in front: nodes on this machine through their shared
  // slab, every other node as chosen above.
  if (options_.shm && (rdma == RdmaPolicy::kAuto || rdma == RdmaPolicy::kOff)) {
    shm_io_ = std::make_unique<ShmNodeIo>(node_io_, CopyThreadCount(options_.copy_threads));
    node_io_ = shm_io_.get();
  }
  return absl::OkStatus();
}

absl::Status Client::Impl::RegisterBuffer(void* data, size_t size) {
  return verbs_io_ == nullptr ? absl::OkStatus() : verbs_io_->RegisterBuffer(data, size);
}

absl::Status Client::Impl::UnregisterBuffer(void* data) {
  return verbs_io_ == nullptr ? absl::OkStatus() : verbs_io_->UnregisterBuffer(data);
}

absl::StatusOr<ReceivedFrame> Client::Impl::CallDirectory(
    const flatbuffers::FlatBufferBuilder& request, bool* resent) {
  // A restarting directory listens again within a second or two: ask again
  // soon, then less often, until the bound.
  constexpr absl::Duration kFirstBackoff = absl::Milliseconds(20);
  constexpr absl::Duration kMaxBackoff = absl::Milliseconds(200);
  // Several directories (a replicated pool): a failover takes the leader's
  // lease (5 s by default) and a catalog load, so wait at least that long.
  constexpr absl::Duration kFailoverRetry = absl::Seconds(15);
  const absl::Duration retry = options_.directory.find(',') == std::string::npos
                                   ? options_.directory_retry
                                   : std::max(options_.directory_retry, kFailoverRetry);
  absl::Time give_up = absl::Now() + retry;
  absl::Duration backoff = kFirstBackoff;
  for (int attempt = 0;; ++attempt) {
    directory_requests_.fetch_add(1, std::memory_order_relaxed);
    if (resent != nullptr) *resent = attempt > 0;
    auto reply = pool_.Call(options_.directory, request);
    if (reply.ok() || reply.status().code() != absl::StatusCode::kUnavailable) return reply;
    if (!retry_directory_.load(std::memory_order_relaxed) || absl::Now() + backoff > give_up) {
      std::string tries = attempt == 0 ? ""
                                       : absl::StrFormat(" (asked %d times over %s)", attempt + 1,
                                                         absl::FormatDuration(retry));
      return absl::UnavailableError(absl::StrFormat("directory %s: %s%s", options_.directory,
                                                    reply.status().message(), tries));
    }
    directory_retries_.fetch_add(1, std::memory_order_relaxed);
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

void Client::Impl::NoteUnreachable(uint32_t node_id, const absl::Status& status) {
  if (!absl::IsUnavailable(status) && !absl::IsDeadlineExceeded(status)) return;
  absl::MutexLock lock(&unreachable_mu_);
  if (std::find(unreachable_.begin(), unreachable_.end(), node_id) == unreachable_.end()) {
    unreachable_.push_back(node_id);
  }
}

std::vector<uint32_t> Client::Impl::TakeUnreachable() {
  absl::MutexLock lock(&unreachable_mu_);
  std::vector<uint32_t> taken;
  taken.swap(unreachable_);
  return taken;
}

absl::Status Client::Impl::WriteToNode(const std::string& address, std::span<const WriteOp> ops) {
  node_requests_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = node_io_->Write(address, ops);
  MaybeReportFabric();
  return s;
}

absl::Status Client::Impl::ReadFromNode(const std::string& address, std::span<const ReadOp> ops) {
  node_requests_.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = node_io_->Read(address, ops);
  MaybeReportFabric();
  return s;
}

// Every few seconds one caller tells the directory what this client's RDMA
// paths carry (unipoolctl fabric); the others see the time and go on.
void Client::Impl::MaybeReportFabric() {
  constexpr int64_t kReportEveryMs = 5000;
  if (verbs_io_ == nullptr) return;
  int64_t now = absl::ToUnixMillis(absl::Now());
  int64_t due = next_fabric_report_ms_.load(std::memory_order_relaxed);
  if (now < due || !next_fabric_report_ms_.compare_exchange_strong(due, now + kReportEveryMs)) {
    return;
  }
  ClientFabric fabric;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  fabric.host = host;
  fabric.client = options_.name;
  fabric.paths = verbs_io_->PathStats();
  fabric.fallbacks = verbs_io_->FallbackStats();
  if (fabric.paths.size() > kMaxFabricEntries) fabric.paths.resize(kMaxFabricEntries);
  if (fabric.fallbacks.size() > kMaxFabricEntries) fabric.fallbacks.resize(kMaxFabricEntries);
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, EncodeFabricReport(fbb, fabric));
  // Once, without waiting for a restarting directory: the next one will do.
  (void)pool_.Call(options_.directory, fbb);
}

ClientStats Client::Impl::stats() const {
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
  s.put_replacements = put_replacements_.load();
  s.directory_retries = directory_retries_.load();
  s.pool_full_waits = pool_full_waits_.load();
  s.pool_full_wait_ms = pool_full_wait_ms_.load();
  if (verbs_io_ != nullptr) {
    s.rdma_requests = verbs_io_->rdma_requests();
    s.tcp_requests = verbs_io_->fallback_requests();
    s.rdma_retries = verbs_io_->retries();
    s.rdma_paths = verbs_io_->PathStats();
    s.tcp_fallbacks = verbs_io_->FallbackStats();
  } else {
    s.tcp_requests = s.node_requests;
  }
  if (shm_io_ != nullptr) {
    s.shm_requests = shm_io_->shm_requests();
    if (verbs_io_ == nullptr) s.tcp_requests = shm_io_->fallback_requests();
  }
  return s;
}

// ------------------------------------------------------------------ Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  ASSIGN_OR_RETURN(ClientSecurity security, LoadClientSecurity(options));
  auto impl = std::make_unique<Impl>(options, std::move(security));
  RETURN_IF_ERROR(impl->SetUpTransports());
  RETURN_IF_ERROR(impl->FetchPoolState().status());  // the directory answers
  impl->RetryDirectoryFromNowOn();
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
  auto lengths = impl_->GetMany(keys, Impl::IntoBuffers(keys, buffers));
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
  return std::move(impl_->ExistsMany({&key, 1})[0]);
}

std::vector<absl::StatusOr<bool>> Client::BatchExists(std::span<const std::string_view> keys) {
  return impl_->ExistsMany(keys);
}

absl::Status Client::Remove(std::string_view key) { return impl_->RemoveMany({&key, 1})[0]; }

std::vector<absl::Status> Client::BatchRemove(std::span<const std::string_view> keys) {
  return impl_->RemoveMany(keys);
}

absl::Status Client::RegisterBuffer(void* data, size_t size) {
  return impl_->RegisterBuffer(data, size);
}

absl::Status Client::UnregisterBuffer(void* data) { return impl_->UnregisterBuffer(data); }

ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace unipool
