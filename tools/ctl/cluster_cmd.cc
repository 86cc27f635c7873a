// unipoolctl cluster up: a directory (with its dashboard) and N pool nodes
// on this machine as child processes (unipool/tools/local_cluster.h), running until
// Ctrl-C (SIGINT) or SIGTERM, then stopped cleanly. With --directories 2 or
// 3: a local etcd and that many replicated directories.
// unipoolctl cluster down --work-dir DIR: stops the cluster up running there
// (its pid is in DIR/cluster.pid).
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "ctl.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/common/tls_files.h"
#include "unipool/common/units.h"
#include "unipool/tools/local_cluster.h"

ABSL_FLAG(int, nodes, 3, "cluster up: number of pool nodes");
ABSL_FLAG(int, directories, 1,
          "cluster up: number of directories; 2 or 3 start a local etcd (Debian's etcd-server) "
          "and replicated directories, the first one leading");
ABSL_FLAG(std::string, pool_size, "256MiB",
          "cluster up: slab size of each node (e.g. 512MiB, 2GiB)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7300",
          "cluster up: HOST:PORT for the directory (port 0: any free port)");
ABSL_FLAG(std::string, http, "127.0.0.1:7380",
          "cluster up: HOST:PORT for the dashboard (port 0: any free port)");
ABSL_FLAG(std::string, tls_dir, "",
          "cluster up: serve TLS 1.3 with the CA and server certificate in this folder "
          "(made by unipoolctl tls init DIR); clients then need --tls-ca DIR/ca.pem");
ABSL_FLAG(std::string, work_dir, "",
          "cluster up: where the directory's database and the logs go "
          "(default: a new directory under /tmp); cluster down: the one to stop");

namespace unipool::ctl {
namespace {

constexpr int kMaxNodes = 64;
constexpr int kMaxDirectories = 3;
constexpr char kPidFile[] = "cluster.pid";
// cluster down waits this long for the cluster to stop (each child gets 5 s).
constexpr absl::Duration kDownBound = absl::Seconds(60);

absl::StatusOr<std::string> MakeWorkDir() {
  std::string dir = absl::GetFlag(FLAGS_work_dir);
  if (!dir.empty()) return dir;
  std::string pattern =
      (std::filesystem::temp_directory_path() / "unipool-cluster-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("cannot create a directory under /tmp"));
  }
  return pattern;
}

// Sends SIGTERM to the cluster up whose pid DIR/cluster.pid holds and waits
// for it to exit.
int Down(const std::string& work_dir) {
  if (work_dir.empty()) return UsageError("cluster down --work-dir DIR");
  std::ifstream in(std::filesystem::path(work_dir) / kPidFile);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return Fail(absl::StrFormat("no cluster runs in %s (no %s there)", work_dir, kPidFile));
  }
  if (kill(pid, SIGTERM) != 0) {
    return Fail(absl::StrFormat("the cluster of %s (pid %d) is not running", work_dir, pid));
  }
  // It removes the pid file as it finishes (an exited child of a shell that
  // has not reaped it yet still answers kill 0).
  absl::Time deadline = absl::Now() + kDownBound;
  while (kill(pid, 0) == 0 && std::filesystem::exists(std::filesystem::path(work_dir) / kPidFile)) {
    if (absl::Now() > deadline) {
      return Fail(absl::StrFormat("the cluster of %s (pid %d) did not stop within %s", work_dir,
                                  pid, absl::FormatDuration(kDownBound)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::printf("unipool cluster of %s stopped\n", work_dir.c_str());
  return kExitOk;
}

}  // namespace

int ClusterCommand(Context& ctx) {
  constexpr char kUsage[] =
      "cluster up [--nodes N] [--directories 1-3] [--pool-size SIZE] [--listen HOST:PORT] "
      "[--http HOST:PORT] [--work-dir DIR] [--tls-dir DIR] (with --key-file KEY: the cluster "
      "authenticates with KEY) | cluster down --work-dir DIR";
  if (ctx.args().size() == 1 && ctx.args()[0] == "down") {
    return Down(absl::GetFlag(FLAGS_work_dir));
  }
  if (ctx.args().size() != 1 || ctx.args()[0] != "up") return UsageError(kUsage);
  int nodes = absl::GetFlag(FLAGS_nodes);
  if (nodes < 1 || nodes > kMaxNodes) {
    return BadFlag(absl::StrFormat("--nodes %d: must be 1 to %d", nodes, kMaxNodes));
  }
  int directories = absl::GetFlag(FLAGS_directories);
  if (directories < 1 || directories > kMaxDirectories) {
    return BadFlag(
        absl::StrFormat("--directories %d: must be 1 to %d", directories, kMaxDirectories));
  }
  absl::StatusOr<uint64_t> pool_size = ParseSize(absl::GetFlag(FLAGS_pool_size));
  if (!pool_size.ok()) {
    return Fail(absl::StrFormat("--pool-size %s: %s", absl::GetFlag(FLAGS_pool_size),
                                pool_size.status().message()));
  }
  absl::StatusOr<std::string> work_dir = MakeWorkDir();
  if (!work_dir.ok()) return Fail(work_dir.status());

  // Before any child or thread exists: SIGINT and SIGTERM are then taken
  // with sigwait below, and the children unblock them for themselves.
  BlockTerminationSignals();
  SetLogComponent("cluster");
  LocalClusterOptions options;
  options.nodes = nodes;
  options.directories = directories;
  options.pool_size = *pool_size;
  options.work_dir = *work_dir;
  options.directory_listen = absl::GetFlag(FLAGS_listen);
  options.http_listen = absl::GetFlag(FLAGS_http);
  // unipoolctl --key-file K cluster up: every process of the cluster proves K.
  options.key_file = ctx.key_file();
  options.tls_dir = absl::GetFlag(FLAGS_tls_dir);
  if (!options.tls_dir.empty() &&
      !std::filesystem::exists(std::filesystem::path(options.tls_dir) / kTlsServerCert)) {
    return Fail(absl::StrFormat("--tls-dir %s: no %s there (make one with unipoolctl tls init %s)",
                                options.tls_dir, kTlsServerCert, options.tls_dir));
  }
  LogInfo("starting %d director%s and %d nodes of %s in %s", directories,
          directories == 1 ? "y" : "ies", nodes, FormatSize(*pool_size), *work_dir);
  absl::StatusOr<std::unique_ptr<LocalCluster>> cluster = LocalCluster::Start(options);
  if (!cluster.ok()) return Fail(cluster.status());
  const std::string& directory = (*cluster)->directory_address();
  std::ofstream(std::filesystem::path(*work_dir) / kPidFile) << getpid() << "\n";
  std::printf("unipool cluster up: %d nodes of %s, %s in all\n", nodes,
              FormatSize(*pool_size).c_str(), FormatSize(*pool_size * nodes).c_str());
  std::printf("  directory  %s\n", directory.c_str());
  if (!(*cluster)->http_address().empty()) {
    std::printf("  dashboard  http://%s/\n", (*cluster)->http_address().c_str());
  }
  std::printf("  logs       %s\n", (*cluster)->work_dir().c_str());
  if (directories > 1) {
    std::printf("  etcd       %s/etcd.log; unipoolctl directory status shows who leads\n",
                (*cluster)->work_dir().c_str());
  }
  std::string tls_ca = (*cluster)->tls_ca();
  if (!tls_ca.empty()) std::printf("  tls        clients trust %s\n", tls_ca.c_str());
  std::printf("  try        UNIPOOL_DIRECTORY=%s %sunipoolctl status\n", directory.c_str(),
              tls_ca.empty() ? "" : ("UNIPOOL_TLS_CA=" + tls_ca + " ").c_str());
  std::printf("  stop       unipoolctl cluster down --work-dir %s\n", work_dir->c_str());
  std::printf("Ctrl-C stops the cluster.\n");
  std::fflush(stdout);
  int signal = WaitForTerminationSignal();
  LogInfo("signal %d: stopping the nodes and the directory", signal);
  cluster->reset();  // SIGTERM to each child, waiting for it to exit
  std::filesystem::remove(std::filesystem::path(*work_dir) / kPidFile);
  LogInfo("stopped; logs and database kept in %s", *work_dir);
  return kExitOk;
}

}  // namespace unipool::ctl
