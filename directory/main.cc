// unipool-directory: the metadata service of a unipool pool.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <optional>
#include <string_view>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/common/server_flags.h"
#include "unipool/common/socket.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/directory_service.h"
#include "unipool/replication/replicated_directory.h"
#include "unipool/web/http_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7300", "HOST:PORT to serve nodes and clients on");
ABSL_FLAG(std::string, db, "", "RocksDB directory holding the pool's map (required)");
ABSL_FLAG(absl::Duration, put_timeout, absl::Seconds(30),
          "reclaim a reserved put not committed within this time");
ABSL_FLAG(absl::Duration, node_timeout, absl::Seconds(5),
          "mark a node down after this long without a heartbeat");
ABSL_FLAG(std::string, sync, "everysec",
          "when an acknowledged commit or remove is on disk. everysec (default): in the "
          "catalog's log before the reply (a crash of the directory loses nothing), the log "
          "fsync'ed in the background every 100 ms (a crash of the machine loses at most the "
          "last ~100 ms of commits; their slab space is reclaimed when the nodes reconnect). "
          "always: fsync'ed before the reply, commits arriving together sharing one fsync. The "
          "old values true and false mean always and everysec");
ABSL_FLAG(absl::Duration, restart_grace, absl::Seconds(2),
          "after a start, puts and lookups wait up to this long for nodes known from the catalog "
          "to register again");
ABSL_FLAG(absl::Duration, rereplicate_after, absl::Seconds(10),
          "re-make the copies of a node down this long on other nodes");
ABSL_FLAG(absl::Duration, forget_node_after, absl::Hours(24 * 7),
          "a node not heard from for this long is forgotten: its record and the copies only it "
          "held are dropped, and its name is free again");
ABSL_FLAG(uint64_t, rereplicate_rate, 256, "MiB per second re-replication may copy");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(10),
          "read lease: a looked-up object is not evicted, nor its memory reused, for this long "
          "(0: no leases; readers rely on checksums alone)");
ABSL_FLAG(absl::Duration, read_capability_lifetime, absl::Seconds(10),
          "with a key: how long a lookup's read capabilities let clients read the copies; the "
          "memory is held (not reused) until they expire (a client whose capability expired "
          "looks the key up again)");
ABSL_FLAG(double, high_watermark, 0.90,
          "evict least recently used objects when a node or the pool is fuller than this");
ABSL_FLAG(double, low_watermark, 0.80, "... down to this fraction of its capacity");
ABSL_FLAG(double, client_reserve_share, 0.5,
          "one tenant (a token's prefix) may hold at most this share of the "
          "pool reserved by puts not yet committed");
ABSL_FLAG(int64_t, client_max_puts, 65536, "... and at most this many such puts");
ABSL_FLAG(std::string, tenant_storage_quota, "",
          "a tenant whose token names no storage quota may store this many allocated bytes "
          "(e.g. 200GiB); past it its own coldest objects are evicted (default: unlimited)");
ABSL_FLAG(std::string, tenant_pin_quota, "",
          "a tenant whose token names no pin quota may pin this many allocated bytes "
          "(default: unlimited)");
ABSL_FLAG(absl::Duration, tensor_orphan_timeout, absl::Minutes(2),
          "remove the stripes of a tensor or model load that was never published once its "
          "newest stripe is this old (a client that died mid-load)");
ABSL_FLAG(std::string, address_file, "",
          "write the bound HOST:PORT to this file once serving (for scripts using port 0)");
ABSL_FLAG(std::string, http, "",
          "HOST:PORT to serve the dashboard, /api/status and /metrics on (default: off)");
ABSL_FLAG(std::string, http_address_file, "",
          "write the bound HTTP HOST:PORT to this file once serving");
ABSL_FLAG(std::string, etcd, "",
          "etcd client URLs (http://HOST:PORT,...): run as one of several directories that elect "
          "a leader through etcd; only the leader listens on --listen, standbys keep a copy of its "
          "catalog (default: a lone directory, no etcd)");
ABSL_FLAG(std::string, replication_listen, "",
          "with --etcd: HOST:PORT where this directory, as a standby, takes the leader's catalog "
          "writes (required with --etcd)");
ABSL_FLAG(std::string, peers, "",
          "with --etcd: the other directories' --replication-listen addresses, HOST:PORT,...");
ABSL_FLAG(std::string, advertise, "",
          "with --etcd: HOST:PORT clients reach this directory at, named to them while it leads "
          "(default: --listen)");
ABSL_FLAG(std::string, pool_name, "default",
          "with --etcd: the pool's name; its leader key is /unipool/NAME/leader");
ABSL_FLAG(absl::Duration, election_ttl, absl::Seconds(5),
          "with --etcd: the leader's lease; a dead leader is replaced within about this long");
ABSL_FLAG(bool, allow_unreplicated, false,
          "with --etcd: acknowledge writes while no standby is in sync (status says "
          "unreplicated; a loss of this directory then loses them). Default: writes wait for a "
          "standby");
ABSL_FLAG(uint64_t, replication_log, 65536,
          "with --etcd: catalog writes the leader keeps for a standby that fell behind; one "
          "further behind is sent a snapshot of the catalog");
ABSL_FLAG(absl::Duration, replication_timeout, absl::Seconds(10),
          "with --etcd: a write no standby has within this long fails Unavailable (the client "
          "retries)");

namespace {

constexpr char kProgram[] = "unipool-directory";

// Every duration and fraction in range, or exit 2 naming the flag.
void ValidateFlags() {
  unipool::RequirePositiveDuration(kProgram, "put-timeout", absl::GetFlag(FLAGS_put_timeout));
  unipool::RequirePositiveDuration(kProgram, "node-timeout", absl::GetFlag(FLAGS_node_timeout));
  // Nodes beat every second: a shorter timeout marks healthy nodes down.
  if (absl::GetFlag(FLAGS_node_timeout) < absl::Seconds(2)) {
    unipool::ExitBadUsage(kProgram,
                          absl::StrFormat("--node-timeout must be at least 2s (nodes beat every "
                                          "second), not %s",
                                          absl::FormatDuration(absl::GetFlag(FLAGS_node_timeout))));
  }
  unipool::RequirePositiveDuration(kProgram, "forget-node-after",
                                   absl::GetFlag(FLAGS_forget_node_after));
  unipool::RequirePositiveDuration(kProgram, "read-capability-lifetime",
                                   absl::GetFlag(FLAGS_read_capability_lifetime));
  absl::Duration lease = absl::GetFlag(FLAGS_lease);
  if (lease < absl::ZeroDuration() || lease == absl::InfiniteDuration()) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--lease must be 0 or a positive, finite "
                                                    "duration, not %s",
                                                    absl::FormatDuration(lease)));
  }
  double share = absl::GetFlag(FLAGS_client_reserve_share);
  if (!(share > 0 && share <= 1)) {
    unipool::ExitBadUsage(
        kProgram, absl::StrFormat("--client-reserve-share must be in (0, 1], not %g", share));
  }
  if (absl::GetFlag(FLAGS_client_max_puts) < 1) {
    unipool::ExitBadUsage(kProgram, "--client-max-puts must be at least 1");
  }
  double high = absl::GetFlag(FLAGS_high_watermark), low = absl::GetFlag(FLAGS_low_watermark);
  if (!(high > 0 && high <= 1) || !(low > 0 && low <= high)) {
    unipool::ExitBadUsage(kProgram,
                          absl::StrFormat("watermarks must satisfy 0 < --low-watermark (%g) <= "
                                          "--high-watermark (%g) <= 1",
                                          low, high));
  }
}

// A quota flag's bytes; 0 when empty (unlimited). Exits 2 for a bad size.
uint64_t QuotaFlag(const std::string& value, std::string_view flag) {
  if (value.empty()) return 0;
  absl::StatusOr<uint64_t> bytes = unipool::ParseSize(value);
  if (!bytes.ok()) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("%s: %s", flag, bytes.status().message()));
  }
  return *bytes;
}

// --sync's values; the old boolean ones keep working.
std::optional<unipool::SyncMode> ParseSyncMode(std::string_view value) {
  if (value == "everysec" || value == "false") return unipool::SyncMode::kInterval;
  if (value == "always" || value == "true") return unipool::SyncMode::kAlways;
  return std::nullopt;
}

// The directory's options from the flags; exits 2 (after a one-line
// message) for a bad value.
unipool::DirectoryOptions OptionsFromFlags() {
  std::optional<unipool::SyncMode> sync = ParseSyncMode(absl::GetFlag(FLAGS_sync));
  if (!sync.has_value()) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--sync must be everysec or always (got '%s')",
                                                    absl::GetFlag(FLAGS_sync)));
  }
  ValidateFlags();
  unipool::DirectoryOptions options;
  options.sync = *sync;
  options.put_timeout = absl::GetFlag(FLAGS_put_timeout);
  options.node_timeout = absl::GetFlag(FLAGS_node_timeout);
  options.restart_grace = absl::GetFlag(FLAGS_restart_grace);
  options.rereplicate_after = absl::GetFlag(FLAGS_rereplicate_after);
  options.forget_node_after = absl::GetFlag(FLAGS_forget_node_after);
  options.rereplicate_bytes_per_second = absl::GetFlag(FLAGS_rereplicate_rate) << 20;
  options.lease = absl::GetFlag(FLAGS_lease);
  options.read_capability_lifetime = absl::GetFlag(FLAGS_read_capability_lifetime);
  options.high_watermark = absl::GetFlag(FLAGS_high_watermark);
  options.low_watermark = absl::GetFlag(FLAGS_low_watermark);
  options.client_quota.max_reserved_share = absl::GetFlag(FLAGS_client_reserve_share);
  options.client_quota.max_pending_puts =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_client_max_puts));
  options.tenant_storage_bytes =
      QuotaFlag(absl::GetFlag(FLAGS_tenant_storage_quota), "--tenant-storage-quota");
  options.tenant_pin_bytes = QuotaFlag(absl::GetFlag(FLAGS_tenant_pin_quota), "--tenant-pin-quota");
  return options;
}

// Starts the dashboard when --http asks for it.
absl::Status StartDashboard(unipool::HttpService& http) {
  std::string listen = absl::GetFlag(FLAGS_http);
  if (listen.empty()) return absl::OkStatus();
  if (absl::Status s = http.Start(listen); !s.ok()) return s;
  unipool::LogInfo("dashboard on http://%s/ (JSON /api/status, Prometheus /metrics)",
                   http.address());
  if (std::string file = absl::GetFlag(FLAGS_http_address_file); !file.empty()) {
    unipool::WriteFileAtomically(file, http.address() + "\n");
  }
  return absl::OkStatus();
}

// --listen is HOST:PORT this machine can listen on; else exit 2 before the
// catalog is created (a trial listen, closed at once: the service binds
// again when it starts).
void RequireListenAddress(const std::string& address) {
  if (absl::Status s = unipool::ParseHostPort(address).status(); !s.ok()) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--listen: %s", s.message()));
  }
  std::string bound;
  if (auto fd = unipool::ListenTcp(address, &bound); !fd.ok()) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--listen: cannot listen on %s: %s", address,
                                                    fd.status().message()));
  }
}

// The HA flags only mean something with --etcd; with it, what it needs.
void ValidateReplicationFlags() {
  bool replicated = !absl::GetFlag(FLAGS_etcd).empty();
  if (!replicated) {
    if (!absl::GetFlag(FLAGS_peers).empty() || !absl::GetFlag(FLAGS_replication_listen).empty() ||
        absl::GetFlag(FLAGS_allow_unreplicated)) {
      unipool::ExitBadUsage(kProgram,
                            "--peers, --replication-listen and --allow-unreplicated "
                            "need --etcd");
    }
    return;
  }
  if (absl::GetFlag(FLAGS_replication_listen).empty()) {
    unipool::ExitBadUsage(kProgram, "--etcd needs --replication-listen HOST:PORT");
  }
  for (const char* name : {"replication-listen", "advertise"}) {
    std::string value = absl::GetFlag(name[0] == 'r' ? FLAGS_replication_listen : FLAGS_advertise);
    if (value.empty()) continue;
    if (absl::Status s = unipool::ParseHostPort(value).status(); !s.ok()) {
      unipool::ExitBadUsage(kProgram, absl::StrFormat("--%s: %s", name, s.message()));
    }
  }
  for (absl::string_view peer :
       absl::StrSplit(absl::GetFlag(FLAGS_peers), ',', absl::SkipEmpty())) {
    if (absl::Status s = unipool::ParseHostPort(std::string(peer)).status(); !s.ok()) {
      unipool::ExitBadUsage(kProgram, absl::StrFormat("--peers: %s", s.message()));
    }
  }
  if (absl::Status s = unipool::ValidatePoolName(absl::GetFlag(FLAGS_pool_name)); !s.ok()) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--pool-name: %s", s.message()));
  }
  absl::Duration ttl = absl::GetFlag(FLAGS_election_ttl);
  if (ttl < absl::Seconds(2) || ttl != absl::Trunc(ttl, absl::Seconds(1))) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--election-ttl must be whole seconds, at "
                                                    "least 2s, not %s",
                                                    absl::FormatDuration(ttl)));
  }
  unipool::RequirePositiveDuration(kProgram, "replication-timeout",
                                   absl::GetFlag(FLAGS_replication_timeout));
  if (absl::GetFlag(FLAGS_replication_log) < 1) {
    unipool::ExitBadUsage(kProgram, "--replication-log must be at least 1");
  }
}

// The election's timings from --election-ttl: renewals every fifth of it,
// and acknowledgements stop a fifth of it before the lease could expire.
unipool::ElectionOptions ElectionFromFlags() {
  unipool::ElectionOptions election;
  election.pool = absl::GetFlag(FLAGS_pool_name);
  election.lease_ttl = absl::GetFlag(FLAGS_election_ttl);
  election.renew_interval = election.lease_ttl / 5;
  election.safety_margin = election.lease_ttl / 5;
  return election;
}

// Serves the dashboard of `directory` (while leading) until `stop`.
void ServeUntil(unipool::Directory* pool, unipool::DirectoryService& service,
                absl::Notification& stop) {
  unipool::DirectoryMetrics* metrics = &service.metrics();
  unipool::HttpService http(
      [pool] { return pool->Status(); },
      [metrics](int history_seconds) { return metrics->Snapshot(history_seconds); });
  if (absl::Status s = StartDashboard(http); !s.ok()) {
    std::cerr << "unipool-directory: " << s.message() << "\n";
    std::exit(1);
  }
  stop.WaitForNotification();
  http.Stop();
}

// unipool-directory --etcd: a standby until elected, then the leader until
// a signal (or, deposed, exit 1: replicated_directory.h).
int RunReplicated(const std::string& db, unipool::DirectoryOptions options,
                  unipool::ServerOptions server, unipool::TensorCatalogOptions tensors) {
  unipool::ReplicatedDirectoryOptions ha;
  ha.db = db;
  ha.listen = absl::GetFlag(FLAGS_listen);
  ha.advertise = absl::GetFlag(FLAGS_advertise);
  ha.replication_listen = absl::GetFlag(FLAGS_replication_listen);
  ha.peers = absl::StrSplit(absl::GetFlag(FLAGS_peers), ',', absl::SkipEmpty());
  ha.etcd = absl::StrSplit(absl::GetFlag(FLAGS_etcd), ',', absl::SkipEmpty());
  ha.election = ElectionFromFlags();
  ha.allow_unreplicated = absl::GetFlag(FLAGS_allow_unreplicated);
  ha.ack_timeout = absl::GetFlag(FLAGS_replication_timeout);
  ha.log_writes = absl::GetFlag(FLAGS_replication_log);
  ha.directory = std::move(options);
  ha.server = std::move(server);
  ha.tensors = std::move(tensors);
  // A signal or an accepted step-down, whichever comes first, ends serving.
  static absl::Notification stop;
  static std::atomic<bool> stopped{false};
  static auto stop_once = [] {
    if (!stopped.exchange(true)) stop.Notify();
  };
  ha.wake_for_step_down = [] { stop_once(); };
  auto replicated = unipool::ReplicatedDirectory::Start(std::move(ha));
  if (!replicated.ok()) {
    std::cerr << "unipool-directory: " << replicated.status().message() << "\n";
    return 1;
  }
  static std::atomic<int> signal{0};
  std::thread([] {
    signal.store(unipool::WaitForTerminationSignal());
    stop_once();
  }).detach();
  absl::Status led = (*replicated)->LeadWhenElected(stop);
  if (!led.ok() && !absl::IsCancelled(led)) {
    std::cerr << "unipool-directory: " << led.message() << "\n";
    return 1;
  }
  if (led.ok()) {
    if (std::string file = absl::GetFlag(FLAGS_address_file); !file.empty()) {
      unipool::WriteFileAtomically(file, (*replicated)->address() + "\n");
    }
    ServeUntil((*replicated)->directory(), *(*replicated)->service(), stop);
    if ((*replicated)->step_down_requested()) {
      // Exit 0: a supervisor that restarts it (or the operator, after an
      // upgrade) brings it back as a standby.
      (*replicated)->HandOver();
      return 0;
    }
  }
  unipool::LogInfo("signal %d: stopping", signal.load());
  (*replicated)->Stop();
  unipool::LogInfo("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  unipool::BlockTerminationSignals();
  unipool::ParseFlags(argc, argv,
                      "unipool-directory --db PATH [--listen HOST:PORT] [--sync everysec|always]");
  unipool::SetLogComponent("directory");
  // Abseil's lock-order graph is checked on every mutex operation (a global
  // lock of its own, ~1% of the directory's CPU per request); the tests keep
  // it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string db = absl::GetFlag(FLAGS_db);
  if (db.empty()) unipool::ExitBadUsage(kProgram, "--db PATH is required");
  unipool::DirectoryOptions options = OptionsFromFlags();
  ValidateReplicationFlags();
  unipool::ServerOptions server_options = unipool::ServerOptionsFromFlags(kProgram, "");
  RequireListenAddress(absl::GetFlag(FLAGS_listen));
  if (server_options.cluster_key != nullptr) {
    auto capabilities = unipool::CapabilityKey::FromCredential(*server_options.cluster_key);
    if (!capabilities.ok() || !server_options.cluster_key->is_cluster_key) {
      unipool::ExitBadUsage(kProgram,
                            "--key-file: the directory needs the cluster key, not a token");
    }
    options.capabilities = *std::move(capabilities);
  }
  unipool::TensorCatalogOptions tensor_options;
  tensor_options.orphan_timeout = absl::GetFlag(FLAGS_tensor_orphan_timeout);
  if (!absl::GetFlag(FLAGS_etcd).empty()) {
    return RunReplicated(db, std::move(options), std::move(server_options), tensor_options);
  }
  auto directory = unipool::Directory::Open(db, options);
  if (!directory.ok()) {
    std::cerr << "unipool-directory: " << directory.status().message() << "\n";
    return 1;
  }
  unipool::DirectoryService service(directory->get(), server_options, tensor_options);
  if (absl::Status s = service.Start(absl::GetFlag(FLAGS_listen)); !s.ok()) {
    std::cerr << "unipool-directory: " << s.message() << "\n";
    return 1;
  }
  unipool::LogInfo("serving on %s, catalog %s (sync %s)", service.address(), db,
                   options.sync == unipool::SyncMode::kAlways
                       ? "always: fsync before every acknowledgement, shared by concurrent commits"
                       : "everysec: fsync in the background every 100 ms");
  if (std::string file = absl::GetFlag(FLAGS_address_file); !file.empty()) {
    unipool::WriteFileAtomically(file, service.address() + "\n");
  }
  unipool::Directory* pool = directory->get();
  unipool::DirectoryMetrics* metrics = &service.metrics();
  unipool::HttpService http(
      [pool] { return pool->Status(); },
      [metrics](int history_seconds) { return metrics->Snapshot(history_seconds); });
  if (absl::Status s = StartDashboard(http); !s.ok()) {
    std::cerr << "unipool-directory: " << s.message() << "\n";
    return 1;
  }
  int signal = unipool::WaitForTerminationSignal();
  unipool::LogInfo("signal %d: stopping", signal);
  http.Stop();
  service.Stop();
  unipool::LogInfo("stopped");
  return 0;
}
