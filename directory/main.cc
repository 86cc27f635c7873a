// unipool-directory: the metadata service of a unipool pool.
#include <signal.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <string_view>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/directory_service.h"
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
ABSL_FLAG(absl::Duration, lease, absl::Seconds(10),
          "read lease: a looked-up object is not evicted, nor its memory reused, for this long "
          "(0: no leases; readers rely on checksums alone)");
ABSL_FLAG(double, high_watermark, 0.90,
          "evict least recently used objects when a node or the pool is fuller than this");
ABSL_FLAG(double, low_watermark, 0.80, "... down to this fraction of its capacity");
ABSL_FLAG(std::string, address_file, "",
          "write the bound HOST:PORT to this file once serving (for scripts using port 0)");
ABSL_FLAG(std::string, http, "",
          "HOST:PORT to serve the dashboard, /api/status and /metrics on (default: off)");
ABSL_FLAG(std::string, http_address_file, "",
          "write the bound HTTP HOST:PORT to this file once serving");

namespace {

// --sync's values; the old boolean ones keep working.
std::optional<unipool::SyncMode> ParseSyncMode(std::string_view value) {
  if (value == "everysec" || value == "false") return unipool::SyncMode::kInterval;
  if (value == "always" || value == "true") return unipool::SyncMode::kAlways;
  return std::nullopt;
}

// The directory's options from the flags; nullopt (after a one-line
// message) for a bad value.
std::optional<unipool::DirectoryOptions> OptionsFromFlags() {
  std::optional<unipool::SyncMode> sync = ParseSyncMode(absl::GetFlag(FLAGS_sync));
  if (!sync.has_value()) {
    std::cerr << "unipool-directory: --sync must be everysec or always (got '"
              << absl::GetFlag(FLAGS_sync) << "')\n";
    return std::nullopt;
  }
  unipool::DirectoryOptions options;
  options.sync = *sync;
  options.put_timeout = absl::GetFlag(FLAGS_put_timeout);
  options.node_timeout = absl::GetFlag(FLAGS_node_timeout);
  options.lease = absl::GetFlag(FLAGS_lease);
  options.high_watermark = absl::GetFlag(FLAGS_high_watermark);
  options.low_watermark = absl::GetFlag(FLAGS_low_watermark);
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
  if (db.empty()) {
    std::cerr << "unipool-directory: --db PATH is required\n";
    return 2;
  }
  std::optional<unipool::DirectoryOptions> options = OptionsFromFlags();
  if (!options.has_value()) return 2;
  auto directory = unipool::Directory::Open(db, *options);
  if (!directory.ok()) {
    std::cerr << "unipool-directory: " << directory.status().message() << "\n";
    return 1;
  }
  unipool::DirectoryService service(directory->get());
  if (absl::Status s = service.Start(absl::GetFlag(FLAGS_listen)); !s.ok()) {
    std::cerr << "unipool-directory: " << s.message() << "\n";
    return 1;
  }
  unipool::LogInfo("serving on %s, catalog %s (sync %s)", service.address(), db,
                   options->sync == unipool::SyncMode::kAlways
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
