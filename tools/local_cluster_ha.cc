// LocalCluster's replicated directories (options.directories > 1): a
// 1-member etcd and N unipool-directory --etcd on loopback.
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

// A loopback HOST:PORT free a moment ago (the directories must know each
// other's addresses before any of them listens).
absl::StatusOr<std::string> FreeLoopbackAddress() {
  std::string bound;
  ASSIGN_OR_RETURN(auto fd, ListenTcp("127.0.0.1:0", &bound));
  return bound;
}

// Directory i's client address: `listen` shifted by i when its port is
// fixed, else a free port.
absl::StatusOr<std::string> DirectoryListen(const std::string& listen, int i) {
  ASSIGN_OR_RETURN(HostPort at, ParseHostPort(listen));
  if (at.port == 0) return FreeLoopbackAddress();
  return absl::StrFormat("%s:%d", at.host, at.port + i);
}

}  // namespace

absl::Status LocalCluster::StartEtcd() {
  ASSIGN_OR_RETURN(std::string client, FreeLoopbackAddress());
  ASSIGN_OR_RETURN(std::string peer, FreeLoopbackAddress());
  etcd_url_ = "http://" + client;
  std::string peer_url = "http://" + peer;
  ASSIGN_OR_RETURN(
      etcd_pid_,
      Spawn(options_.etcd_binary,
            {"--name=m1", "--data-dir=" + options_.work_dir + "/etcd-data",
             "--listen-client-urls=" + etcd_url_, "--advertise-client-urls=" + etcd_url_,
             "--listen-peer-urls=" + peer_url, "--initial-advertise-peer-urls=" + peer_url,
             "--initial-cluster=m1=" + peer_url},
            "etcd"));
  // The directories wait for etcd themselves (they campaign until it answers).
  return absl::OkStatus();
}

absl::Status LocalCluster::StartReplicatedDirectories() {
  const int n = options_.directories;
  RETURN_IF_ERROR(StartEtcd());
  std::vector<std::string> listen(n), replication(n), http(n);
  for (int i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(listen[i], DirectoryListen(options_.directory_listen, i));
    ASSIGN_OR_RETURN(replication[i], FreeLoopbackAddress());
    if (!options_.http_listen.empty()) {
      ASSIGN_OR_RETURN(http[i], DirectoryListen(options_.http_listen, i));
    }
  }
  // All at once: the first elected waits for a standby before its first
  // write is acknowledged. Directory 0, started first, is usually elected.
  std::vector<Member> started;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> peers;
    for (int j = 0; j < n; ++j) {
      if (j != i) peers.push_back(replication[j]);
    }
    std::string name = absl::StrFormat("directory%d", i);
    std::string file = options_.work_dir + "/" + name;
    std::filesystem::remove(file + ".address");
    std::filesystem::remove(file + ".http-address");
    std::vector<std::string> args = {
        "--listen=" + listen[i],
        "--db=" + file + "-db",
        "--address-file=" + file + ".address",
        "--node-timeout=" + absl::FormatDuration(options_.node_timeout),
        "--etcd=" + etcd_url_,
        "--replication-listen=" + replication[i],
        "--peers=" + absl::StrJoin(peers, ",")};
    if (!http[i].empty()) {
      args.push_back("--http=" + http[i]);
      args.push_back("--http-address-file=" + file + ".http-address");
    }
    if (!options_.key_file.empty()) args.push_back("--key-file=" + options_.key_file);
    AddTlsFlags(args);
    args.insert(args.end(), options_.directory_flags.begin(), options_.directory_flags.end());
    Member directory{.name = name, .address = listen[i]};
    ASSIGN_OR_RETURN(directory.pid, Spawn("unipool-directory", args, name));
    started.push_back(directory);
  }
  directory_ = started[0];
  standbys_.assign(started.begin() + 1, started.end());
  directory_address_ = absl::StrJoin(listen, ",");
  return WaitForAnyLeader();
}

absl::Status LocalCluster::WaitForAnyLeader() {
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    for (int i = 0; i < options_.directories; ++i) {
      std::string file = options_.work_dir + absl::StrFormat("/directory%d", i);
      if (!std::filesystem::exists(file + ".address")) continue;
      if (options_.http_listen.empty()) return absl::OkStatus();
      pid_t pid = i == 0 ? directory_.pid : standbys_[i - 1].pid;
      ASSIGN_OR_RETURN(http_address_, WaitForAddressFile(file + ".http-address", pid));
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "no directory was elected within 60 s (see the logs in %s)", options_.work_dir));
}

}  // namespace unipool
