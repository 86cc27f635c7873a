#include "ha_cluster.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_join.h"
#include "unipool/common/socket.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

// A loopback address with a port free now (the directories must know each
// other's addresses before any of them listens).
std::string FreeLoopbackAddress() {
  std::string bound;
  auto fd = ListenTcp("127.0.0.1:0", &bound);
  return fd.ok() ? bound : "127.0.0.1:1";
}

}  // namespace

std::string BesideTest(const std::string& name) {
  return (std::filesystem::path(program_invocation_name).parent_path() / name).string();
}

absl::StatusOr<std::unique_ptr<HaCluster>> HaCluster::Start(const std::string& dir,
                                                            HaClusterOptions options) {
  std::unique_ptr<HaCluster> cluster(new HaCluster(dir, options));
  auto etcd = EtcdMember::Start(dir);
  if (!etcd.ok()) return etcd.status();
  cluster->etcd_ = std::move(*etcd);
  for (int i = 0; i < options.directories; ++i) {
    cluster->listen_.push_back(FreeLoopbackAddress());
    cluster->replication_.push_back(FreeLoopbackAddress());
  }
  cluster->directories_.resize(options.directories);
  cluster->StartDirectory(0);
  if (cluster->WaitForLeader(-1, absl::Seconds(60)) != 0) {
    return absl::UnavailableError("directory 0 was not elected");
  }
  for (int i = 1; i < options.directories; ++i) cluster->StartDirectory(i);
  std::string node_address = dir + "/node.address";
  cluster->node_ = std::make_unique<Background>(
      std::vector<std::string>{
          BesideTest("unipool-node"), "--directory=" + cluster->directory_list(),
          "--pool-size=" + std::to_string(64 << 20), "--listen=127.0.0.1:0", "--name=node0",
          "--address-file=" + node_address, "--state-dir=" + dir + "/node.state"},
      dir + "/node.log");
  if (!WaitForFileText(dir + "/node.log", "registered", absl::Seconds(60))) {
    return absl::UnavailableError("the node did not register");
  }
  return cluster;
}

std::string HaCluster::directory_list() const { return absl::StrJoin(listen_, ","); }

void HaCluster::StartDirectory(int i) {
  std::vector<std::string> peers;
  for (int j = 0; j < options_.directories; ++j) {
    if (j != i) peers.push_back(replication_[j]);
  }
  std::filesystem::remove(AddressFile(i));
  std::vector<std::string> argv = {
      BesideTest("unipool-directory"),
      "--db=" + dir_ + "/directory" + std::to_string(i) + ".db",
      "--listen=" + listen_[i],
      "--etcd=" + etcd_->url(),
      "--replication-listen=" + replication_[i],
      "--peers=" + absl::StrJoin(peers, ","),
      "--election-ttl=" + std::to_string(options_.election_ttl_seconds) + "s",
      "--node-timeout=3s",
      "--address-file=" + AddressFile(i)};
  argv.insert(argv.end(), options_.directory_flags.begin(), options_.directory_flags.end());
  directories_[i] = std::make_unique<Background>(argv, log(i));
}

int HaCluster::WaitForLeader(int except, absl::Duration bound) {
  int leader = -1;
  WaitUntil(
      [&] {
        for (int i = 0; i < options_.directories; ++i) {
          if (i != except && directories_[i] != nullptr &&
              std::filesystem::exists(AddressFile(i))) {
            leader = i;
            return true;
          }
        }
        return false;
      },
      bound);
  return leader;
}

void HaCluster::Kill(int i) {
  kill(directories_[i]->pid(), SIGKILL);
  directories_[i]->Stop(SIGKILL, absl::Seconds(10));
  directories_[i].reset();
  std::filesystem::remove(AddressFile(i));
}

void HaCluster::Pause(int i) { kill(directories_[i]->pid(), SIGSTOP); }
void HaCluster::Resume(int i) { kill(directories_[i]->pid(), SIGCONT); }

int HaCluster::WaitForExit(int i, absl::Duration bound) {
  // SIGCONT asks nothing of a running process: Stop only waits.
  int code = directories_[i]->Stop(SIGCONT, bound);
  directories_[i].reset();
  std::filesystem::remove(AddressFile(i));
  return code;
}

int HaCluster::Terminate(int i, absl::Duration bound) {
  int code = directories_[i]->Stop(SIGTERM, bound);
  directories_[i].reset();
  std::filesystem::remove(AddressFile(i));
  return code;
}

absl::Status HaCluster::Restart(int i) {
  if (directories_[i] != nullptr) return absl::FailedPreconditionError("still running");
  StartDirectory(i);
  return absl::OkStatus();
}

}  // namespace unipool::testing
