// A unipool cluster on this machine: one directory and N pool nodes as real
// child processes on loopback. Used by the demo, `unipoolctl cluster up`
// later, and the integration tests (which kill and restart its members).
//
// Thread safety: not thread-safe; drive it from one thread.
#ifndef UNIPOOL_TOOLS_LOCAL_CLUSTER_H_
#define UNIPOOL_TOOLS_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

struct LocalClusterOptions {
  // Number of pool nodes. Default 3.
  int nodes = 3;
  // Slab size of each node. Default 256 MiB.
  uint64_t pool_size = 256ull << 20;
  // Holds the directory's RocksDB, every node's --state-dir and every
  // process's log. Created if missing. REQUIRED.
  std::string work_dir;
  // Where unipool-directory and unipool-node are. Default: the directory of
  // the running executable (they are built side by side).
  std::string bin_dir;
  // The directory's --node-timeout. Default 3 s: deaths are seen quickly,
  // and a loaded 2-core test machine still beats in time.
  absl::Duration node_timeout = absl::Seconds(3);
  // The pool's cluster key (unipoolctl keygen): given to the directory and
  // every node (--key-file) and used by the cluster's own status checks.
  // Default empty: no authentication (servers on loopback only).
  std::string key_file;
  // A folder made by `unipoolctl tls init` (tls_files.h): every process
  // serves TLS with its server certificate and checks the others' against
  // its CA, as do the cluster's own status checks. Default empty: plain TCP.
  std::string tls_dir;
  // Extra flags for the directory (e.g. "--sync=always").
  std::vector<std::string> directory_flags;
  // Directories. Default 1: a lone directory, no etcd. More: a replicated
  // pool (docs/operations.md): a 1-member etcd (`etcd_binary`, data and log
  // in work_dir) and that many unipool-directory --etcd, started together
  // (directory 0 first, so usually elected). directory_listen's and
  // http_listen's ports, when not 0, are directory 0's, and directory i's
  // are the port + i; replication ports are free ones. Only the leader
  // serves its dashboard.
  int directories = 1;
  std::string etcd_binary = "/usr/bin/etcd";
  // HOST:PORT the directory listens on. Default: a free loopback port.
  std::string directory_listen = "127.0.0.1:0";
  // HOST:PORT of the directory's dashboard (--http); port 0 picks a free
  // one. Default empty: no dashboard.
  std::string http_listen;
  // Extra flags for every node (e.g. "--rdma=off").
  std::vector<std::string> node_flags;
  // Nodes keep their slabs in POSIX shared memory (unipool-node
  // --slab-name), so a node restarted by RestartNode finds its pages again,
  // as a node process restarted on a machine that kept running does. The
  // shared memory is removed with the cluster. Default false: a restarted
  // node has a new, empty slab.
  bool shared_slabs = false;
};

class LocalCluster {
 public:
  // Starts the directory and the nodes and waits until every node is up.
  // Node i registers i-th: status and list replies list the nodes in order.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(LocalClusterOptions options);
  // Stops every process (SIGTERM, then SIGKILL after 5 s).
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // The directory's HOST:PORT; with several, every one's, comma-separated
  // (what clients and nodes are given).
  const std::string& directory_address() const { return directory_address_; }
  // The dashboard's bound HOST:PORT; empty without options.http_listen.
  const std::string& http_address() const { return http_address_; }
  int node_count() const { return static_cast<int>(nodes_.size()); }
  // The data-path address of node i (0-based), as it last started.
  const std::string& node_address(int i) const { return nodes_[i].address; }
  // The stable name of node i ("node0", ...).
  const std::string& node_name(int i) const { return nodes_[i].name; }
  const std::string& work_dir() const { return options_.work_dir; }
  // The key file every process of the cluster proves; empty: none.
  const std::string& key_file() const { return options_.key_file; }
  // The CA certificate clients must trust; empty: the cluster is plain TCP.
  std::string tls_ca() const;
  // Process ids (e.g. to read a server's memory use from /proc).
  pid_t directory_pid() const { return directory_.pid; }
  pid_t node_pid(int i) const { return nodes_[i].pid; }

  // SIGKILL: the process dies at once, as in a crash.
  absl::Status KillDirectory();
  absl::Status KillNode(int i);
  // SIGSTOP / SIGCONT: node i hangs (its sockets stay open, nothing is
  // answered) until resumed, as a node stalled by its machine would.
  absl::Status PauseNode(int i);
  absl::Status ResumeNode(int i);
  // Starts again with the same database / name (a node gets a new slab).
  absl::Status RestartDirectory();
  // Returns once the directory has the restarted node up at its new
  // address (not the dead process's registration, up until its timeout).
  absl::Status RestartNode(int i);
  // With shared_slabs: the POSIX shared-memory object holding node i's slab
  // (tests open it to damage a stored page).
  std::string SlabName(int i) const;
  // With shared_slabs: throws away node i's slab, as a reboot of its machine
  // would. REQUIRES: node i is not running (KillNode first).
  absl::Status DropSlab(int i);

  // Waits until the directory reports `count` nodes up.
  absl::Status WaitForNodesUp(int count, absl::Duration timeout);
  // Waits until node i is reported down.
  absl::Status WaitForNodeDown(int i, absl::Duration timeout);

 private:
  struct Member {
    std::string name;
    pid_t pid = -1;
    std::string address;
  };

  explicit LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {}
  // options_.directories > 1 (local_cluster_ha.cc): etcd, then the
  // directories; directory_ is directory 0, standbys_ the others.
  absl::Status StartReplicatedDirectories();
  absl::Status StartEtcd();
  // Waits until one of them was elected (its address file), and reads its
  // dashboard's address.
  absl::Status WaitForAnyLeader();
  // --tls-cert, --tls-key and --tls-ca from options_.tls_dir, if set.
  void AddTlsFlags(std::vector<std::string>& args) const;
  absl::Status StartDirectory(const std::string& listen);
  absl::Status StartNode(int i);
  absl::StatusOr<pid_t> Spawn(const std::string& binary, const std::vector<std::string>& args,
                              const std::string& log_name);
  absl::StatusOr<std::string> WaitForAddressFile(const std::string& path, pid_t pid);
  // The nodes as the directory sees them, or the error reaching it.
  absl::StatusOr<std::vector<NodeState>> NodeStates();

  LocalClusterOptions options_;
  Member directory_;
  std::vector<Member> standbys_;  // directories 1.. of a replicated pool
  pid_t etcd_pid_ = -1;
  std::string etcd_url_;
  std::string directory_address_;
  std::string http_address_;
  std::vector<Member> nodes_;
};

// The directory holding the running executable (for finding sibling binaries).
std::string ExecutableDir();

}  // namespace unipool

#endif  // UNIPOOL_TOOLS_LOCAL_CLUSTER_H_
