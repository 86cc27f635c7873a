// unipoolctl cluster up: a directory (with its dashboard) and N pool nodes
// on this machine as child processes (unipool/tools/local_cluster.h), running until
// Ctrl-C (SIGINT) or SIGTERM, then stopped cleanly.
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "ctl.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/common/tls_files.h"
#include "unipool/common/units.h"
#include "unipool/tools/local_cluster.h"

ABSL_FLAG(int, nodes, 3, "cluster up: number of pool nodes");
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
          "(default: a new directory under /tmp)");

namespace unipool::ctl {
namespace {

constexpr int kMaxNodes = 64;

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

}  // namespace

int ClusterCommand(Context& ctx) {
  constexpr char kUsage[] =
      "cluster up [--nodes N] [--pool-size SIZE] [--listen HOST:PORT] [--http HOST:PORT] "
      "[--work-dir DIR] [--tls-dir DIR] (with --key-file KEY: the cluster authenticates with "
      "KEY)";
  if (ctx.args().size() != 1 || ctx.args()[0] != "up") return UsageError(kUsage);
  int nodes = absl::GetFlag(FLAGS_nodes);
  if (nodes < 1 || nodes > kMaxNodes) {
    return Fail(absl::StrFormat("--nodes %d: must be 1 to %d", nodes, kMaxNodes));
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
  LogInfo("starting a directory and %d nodes of %s in %s", nodes, FormatSize(*pool_size),
          *work_dir);
  absl::StatusOr<std::unique_ptr<LocalCluster>> cluster = LocalCluster::Start(options);
  if (!cluster.ok()) return Fail(cluster.status());
  const std::string& directory = (*cluster)->directory_address();
  std::printf("unipool cluster up: %d nodes of %s, %s in all\n", nodes,
              FormatSize(*pool_size).c_str(), FormatSize(*pool_size * nodes).c_str());
  std::printf("  directory  %s\n", directory.c_str());
  if (!(*cluster)->http_address().empty()) {
    std::printf("  dashboard  http://%s/\n", (*cluster)->http_address().c_str());
  }
  std::printf("  logs       %s\n", (*cluster)->work_dir().c_str());
  std::string tls_ca = (*cluster)->tls_ca();
  if (!tls_ca.empty()) std::printf("  tls        clients trust %s\n", tls_ca.c_str());
  std::printf("  try        UNIPOOL_DIRECTORY=%s %sunipoolctl status\n", directory.c_str(),
              tls_ca.empty() ? "" : ("UNIPOOL_TLS_CA=" + tls_ca + " ").c_str());
  std::printf("Ctrl-C stops the cluster.\n");
  std::fflush(stdout);
  int signal = WaitForTerminationSignal();
  LogInfo("signal %d: stopping the nodes and the directory", signal);
  cluster->reset();  // SIGTERM to each child, waiting for it to exit
  LogInfo("stopped; logs and database kept in %s", *work_dir);
  return kExitOk;
}

}  // namespace unipool::ctl
