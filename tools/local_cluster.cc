#include "unipool/tools/local_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/tls_files.h"
#include "unipool/platform/memory.h"
#include "unipool/platform/process.h"

namespace unipool {
namespace {

// Polling period while waiting for a child to be ready.
constexpr absl::Duration kPoll = absl::Milliseconds(50);
// Generous: a process that fails exits and is seen at once, but a healthy
// node may take long to serve on a loaded machine or in an emulated VM
// (faulting in and registering a GiB slab there takes tens of seconds).
constexpr absl::Duration kStartTimeout = absl::Seconds(120);

bool Exited(pid_t pid) {
  int status;
  return waitpid(pid, &status, WNOHANG) == pid;
}

void StopProcess(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    if (Exited(pid)) return;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace

std::string ExecutableDir() {
  absl::StatusOr<std::string> exe = platform::ExecutablePath();
  return exe.ok() ? std::filesystem::path(*exe).parent_path().string() : std::string(".");
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(LocalClusterOptions options) {
  if (options.work_dir.empty()) return absl::InvalidArgumentError("work_dir is required");
  if (options.bin_dir.empty()) options.bin_dir = ExecutableDir();
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot create %s: %s", options.work_dir, ec.message()));
  }
  std::unique_ptr<LocalCluster> cluster(new LocalCluster(std::move(options)));
  RETURN_IF_ERROR(cluster->options_.directories > 1
                      ? cluster->StartReplicatedDirectories()
                      : cluster->StartDirectory(cluster->options_.directory_listen));
  cluster->nodes_.resize(cluster->options_.nodes);
  // One at a time, each registered before the next starts: node ids (the
  // order of status and list replies) then follow the node indices.
  for (int i = 0; i < cluster->options_.nodes; ++i) {
    cluster->nodes_[i].name = absl::StrFormat("node%d", i);
    RETURN_IF_ERROR(cluster->StartNode(i));
    RETURN_IF_ERROR(cluster->WaitForNodesUp(i + 1, kStartTimeout));
  }
  return cluster;
}

LocalCluster::~LocalCluster() {
  for (Member& node : nodes_) StopProcess(node.pid);
  for (Member& standby : standbys_) StopProcess(standby.pid);
  StopProcess(directory_.pid);
  StopProcess(etcd_pid_);
  if (options_.shared_slabs) {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      (void)platform::UnlinkNamedMemory(SlabName(i));
    }
  }
}

std::string LocalCluster::SlabName(int i) const {
  // Unique per test process: clusters of parallel tests never share one.
  return absl::StrFormat("/unipool-%d-%s", getpid(), nodes_[i].name);
}

absl::Status LocalCluster::DropSlab(int i) {
  if (nodes_[i].pid > 0) return absl::FailedPreconditionError("node is running");
  absl::Status dropped = platform::UnlinkNamedMemory(SlabName(i));
  return absl::IsNotFound(dropped) ? absl::OkStatus() : dropped;
}

absl::StatusOr<pid_t> LocalCluster::Spawn(const std::string& binary,
                                          const std::vector<std::string>& args,
                                          const std::string& log_name) {
  std::string path = binary.starts_with("/") ? binary : options_.bin_dir + "/" + binary;
  if (access(path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat("%s is not an executable", path));
  }
  std::string log = options_.work_dir + "/" + log_name + ".log";
  std::vector<std::string> argv_storage = {path};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  ASSIGN_OR_RETURN(platform::ParentWatch watch, platform::PrepareParentWatch());
  pid_t pid = fork();
  if (pid < 0)
    return absl::ResourceExhaustedError(absl::StrFormat("fork: %s", std::strerror(errno)));
  if (pid == 0) {
    // Die with the parent: a crashed test must not leave servers behind.
    platform::DieWithParent(watch);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

absl::StatusOr<std::string> LocalCluster::WaitForAddressFile(const std::string& path, pid_t pid) {
  absl::Time deadline = absl::Now() + kStartTimeout;
  while (absl::Now() < deadline) {
    std::ifstream in(path);
    std::string address;
    if (in >> address && !address.empty()) return address;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::InternalError(
          absl::StrFormat("process %d exited (status %d) before serving; see the logs in %s", pid,
                          status, options_.work_dir));
    }
    absl::SleepFor(kPoll);
  }
  return absl::DeadlineExceededError(absl::StrFormat("%s did not appear in time", path));
}

std::string LocalCluster::tls_ca() const {
  return options_.tls_dir.empty() ? "" : options_.tls_dir + "/" + kTlsCaCert;
}

void LocalCluster::AddTlsFlags(std::vector<std::string>& args) const {
  if (options_.tls_dir.empty()) return;
  args.push_back("--tls-cert=" + options_.tls_dir + "/" + kTlsServerCert);
  args.push_back("--tls-key=" + options_.tls_dir + "/" + kTlsServerKey);
  args.push_back("--tls-ca=" + tls_ca());
}

absl::Status LocalCluster::StartDirectory(const std::string& listen) {
  std::string address_file = options_.work_dir + "/directory.address";
  std::filesystem::remove(address_file);
  std::vector<std::string> args = {"--listen=" + listen,
                                   "--db=" + options_.work_dir + "/directory-db",
                                   "--address-file=" + address_file,
                                   "--node-timeout=" + absl::FormatDuration(options_.node_timeout)};
  if (!options_.key_file.empty()) args.push_back("--key-file=" + options_.key_file);
  AddTlsFlags(args);
  args.insert(args.end(), options_.directory_flags.begin(), options_.directory_flags.end());
  std::string http_file = options_.work_dir + "/directory.http-address";
  if (!options_.http_listen.empty()) {
    std::filesystem::remove(http_file);
    // A restarted directory keeps the dashboard where it was.
    args.push_back("--http=" + (http_address_.empty() ? options_.http_listen : http_address_));
    args.push_back("--http-address-file=" + http_file);
  }
  ASSIGN_OR_RETURN(directory_.pid, Spawn("unipool-directory", args, "directory"));
  ASSIGN_OR_RETURN(directory_address_, WaitForAddressFile(address_file, directory_.pid));
  if (!options_.http_listen.empty()) {
    ASSIGN_OR_RETURN(http_address_, WaitForAddressFile(http_file, directory_.pid));
  }
  return absl::OkStatus();
}

absl::Status LocalCluster::StartNode(int i) {
  Member& node = nodes_[i];
  std::string address_file = options_.work_dir + "/" + node.name + ".address";
  std::filesystem::remove(address_file);
  std::vector<std::string> args = {"--directory=" + directory_address_,
                                   "--pool-size=" + std::to_string(options_.pool_size),
                                   "--listen=127.0.0.1:0",
                                   "--name=" + node.name,
                                   "--address-file=" + address_file,
                                   "--state-dir=" + options_.work_dir + "/" + node.name + ".state"};
  if (!options_.key_file.empty()) args.push_back("--key-file=" + options_.key_file);
  AddTlsFlags(args);
  args.insert(args.end(), options_.node_flags.begin(), options_.node_flags.end());
  if (options_.shared_slabs) args.push_back("--slab-name=" + SlabName(i));
  ASSIGN_OR_RETURN(node.pid, Spawn("unipool-node", args, node.name));
  ASSIGN_OR_RETURN(node.address, WaitForAddressFile(address_file, node.pid));
  return absl::OkStatus();
}

absl::Status LocalCluster::KillDirectory() {
  if (directory_.pid <= 0) return absl::FailedPreconditionError("directory not running");
  kill(directory_.pid, SIGKILL);
  waitpid(directory_.pid, nullptr, 0);
  directory_.pid = -1;
  return absl::OkStatus();
}

absl::Status LocalCluster::KillNode(int i) {
  if (nodes_[i].pid <= 0) return absl::FailedPreconditionError("node not running");
  kill(nodes_[i].pid, SIGKILL);
  waitpid(nodes_[i].pid, nullptr, 0);
  nodes_[i].pid = -1;
  return absl::OkStatus();
}

absl::Status LocalCluster::PauseNode(int i) {
  if (nodes_[i].pid <= 0) return absl::FailedPreconditionError("node not running");
  kill(nodes_[i].pid, SIGSTOP);
  // The signal is delivered asynchronously: wait until the node has stopped.
  int status = 0;
  if (waitpid(nodes_[i].pid, &status, WUNTRACED) != nodes_[i].pid || !WIFSTOPPED(status)) {
    return absl::InternalError(absl::StrFormat("node %d did not stop", i));
  }
  return absl::OkStatus();
}

absl::Status LocalCluster::ResumeNode(int i) {
  if (nodes_[i].pid <= 0) return absl::FailedPreconditionError("node not running");
  kill(nodes_[i].pid, SIGCONT);
  return absl::OkStatus();
}

absl::Status LocalCluster::RestartDirectory() {
  if (directory_.pid > 0) RETURN_IF_ERROR(KillDirectory());
  // Same address: the nodes reconnect to where the directory was.
  return StartDirectory(directory_address_);
}

absl::Status LocalCluster::RestartNode(int i) {
  if (nodes_[i].pid > 0) RETURN_IF_ERROR(KillNode(i));
  RETURN_IF_ERROR(StartNode(i));
  absl::Time deadline = absl::Now() + kStartTimeout;
  while (absl::Now() < deadline) {
    auto states = NodeStates();
    if (states.ok()) {
      for (const NodeState& n : *states) {
        if (n.name == nodes_[i].name && n.up && n.data_address == nodes_[i].address) {
          return absl::OkStatus();
        }
      }
    }
    absl::SleepFor(kPoll);
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("%s restarted but not registered at %s", nodes_[i].name, nodes_[i].address));
}

absl::StatusOr<std::vector<NodeState>> LocalCluster::NodeStates() {
  ClientOptions options;
  options.directory = directory_address_;
  options.name = "local-cluster";
  options.connect_timeout = absl::Seconds(1);
  options.key_file = options_.key_file;
  options.tls_ca = tls_ca();
  ASSIGN_OR_RETURN(auto admin, Admin::Connect(options));
  ASSIGN_OR_RETURN(PoolState state, admin->State());
  return state.nodes;
}

absl::Status LocalCluster::WaitForNodesUp(int count, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::DeadlineExceededError("no answer yet");
  while (absl::Now() < deadline) {
    auto states = NodeStates();
    if (states.ok()) {
      int up = 0;
      for (const NodeState& n : *states) up += n.up ? 1 : 0;
      if (up >= count) return absl::OkStatus();
      last = absl::DeadlineExceededError(absl::StrFormat("%d of %d nodes up", up, count));
    } else {
      last = states.status();
    }
    absl::SleepFor(kPoll);
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "cluster not ready after %s: %s", absl::FormatDuration(timeout), last.message()));
}

absl::Status LocalCluster::WaitForNodeDown(int i, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto states = NodeStates();
    if (states.ok()) {
      for (const NodeState& n : *states) {
        if (n.name == nodes_[i].name && !n.up) return absl::OkStatus();
      }
    }
    absl::SleepFor(kPoll);
  }
  return absl::DeadlineExceededError(absl::StrFormat("%s not marked down", nodes_[i].name));
}

}  // namespace unipool
