// Replicated directories on loopback for the failover tests: a real etcd,
// N unipool-directory processes started with --etcd (each a standby until
// elected), and one unipool-node given every directory's address, all in a
// folder of the running test (each process's log there).
//
// Thread safety: not thread-safe; one test thread drives it.
#ifndef UNIPOOL_TESTS_HA_HA_CLUSTER_H_
#define UNIPOOL_TESTS_HA_HA_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "etcd_member.h"
#include "unipool/testing/subprocess.h"

namespace unipool::testing {

struct HaClusterOptions {
  int directories = 2;
  // Each directory's --election-ttl (whole seconds).
  int election_ttl_seconds = 2;
  // Extra flags for every directory.
  std::vector<std::string> directory_flags;
};

// The program `name` built beside the running test (unipool-directory,
// unipool-node, unipoolctl).
std::string BesideTest(const std::string& name);

class HaCluster {
 public:
  // Starts etcd, the directories (directory 0 first: it is elected), waits
  // for the leader, then starts the node and waits until it registered.
  static absl::StatusOr<std::unique_ptr<HaCluster>> Start(const std::string& dir,
                                                          HaClusterOptions options);

  // Every directory's client address, "a:p,b:p" (what clients are given).
  std::string directory_list() const;
  // Directory i's --listen and --replication-listen.
  const std::string& listen_address(int i) const { return listen_[i]; }
  const std::string& replication_address(int i) const { return replication_[i]; }
  std::string log(int i) const { return dir_ + "/directory" + std::to_string(i) + ".log"; }
  pid_t pid(int i) const { return directories_[i]->pid(); }
  bool running(int i) const { return directories_[i] != nullptr; }

  // The directory other than `except` (-1: any) that wrote its address file
  // (it was elected and serves), waiting up to `bound`; -1 if none did.
  int WaitForLeader(int except, absl::Duration bound);
  void Kill(int i);
  // SIGSTOP / SIGCONT: directory i hangs (its sockets stay open) until resumed.
  void Pause(int i);
  void Resume(int i);
  // Waits up to `bound` for directory i to exit by itself; its exit code
  // (-1: killed at the bound, or died of a signal).
  int WaitForExit(int i, absl::Duration bound);
  // SIGTERM (a planned stop: a leader resigns first); waits for the exit
  // and returns its code (-1: killed at the bound).
  int Terminate(int i, absl::Duration bound);
  absl::Status Restart(int i);

 private:
  HaCluster(std::string dir, HaClusterOptions options) : dir_(std::move(dir)), options_(options) {}
  void StartDirectory(int i);
  std::string AddressFile(int i) const {
    return dir_ + "/directory" + std::to_string(i) + ".address";
  }

  std::string dir_;
  HaClusterOptions options_;
  std::unique_ptr<EtcdMember> etcd_;
  std::vector<std::string> listen_, replication_;
  std::vector<std::unique_ptr<Background>> directories_;
  std::unique_ptr<Background> node_;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTS_HA_HA_CLUSTER_H_
