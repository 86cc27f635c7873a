// unipool-node: exports a slab of this machine's memory to the pool.

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/common/server_flags.h"
#include "unipool/common/socket.h"
#include "unipool/common/units.h"
#include "unipool/node/node.h"
#include "unipool/node/node_flash.h"
#include "unipool/verbs/port_set.h"

ABSL_FLAG(std::string, directory, "127.0.0.1:7300", "HOST:PORT of the directory");
ABSL_FLAG(std::string, pool_size, "1GiB", "memory to export, e.g. 8GiB, 512MiB");
ABSL_FLAG(bool, allow_overcommit, false,
          "accept a --pool-size larger than this machine's physical memory");
ABSL_FLAG(std::string, listen, "127.0.0.1:7301", "HOST:PORT of the data path (port 0: any)");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT[,HOST:PORT...] clients should use to reach this node, tried in order "
          "(e.g. its Thunderbolt IP, then Ethernet; default: the bound --listen address)");
ABSL_FLAG(std::string, name, "",
          "stable identity of this node in the pool (default: HOSTNAME:PORT)");
ABSL_FLAG(std::string, rdma, "auto",
          "auto: serve RDMA when this machine has a usable device (else TCP only, said in "
          "the log); off: TCP only");
ABSL_FLAG(std::string, rdma_devices, "",
          "RDMA devices to serve on, comma-separated (default: $UNIPOOL_RDMA_DEVICES, else "
          "every port of every device; a port down at start is adopted when it comes up)");
ABSL_FLAG(std::string, rdma_device, "", "one RDMA device: the same as --rdma-devices NAME");
ABSL_FLAG(std::string, slab_name, "",
          "keep the slab in this POSIX shared-memory object, so that a restarted node process "
          "(on a machine that kept running) finds its pages again; the directory verifies and "
          "readmits them (default: private memory, lost with the process)");
ABSL_FLAG(std::string, shm, "auto",
          "auto: hand the slab to clients on this machine (same user), who then copy pages "
          "through shared memory with no work for this process; off: never");
ABSL_FLAG(bool, prefault, true,
          "fault in every slab page at start (in parallel threads for 1 GiB or more; the time "
          "is logged), so no put's write faults a page in; false: pages fault in on first use");
ABSL_FLAG(int, prefault_threads, 0, "threads for --prefault (default 0: one per core)");
ABSL_FLAG(std::string, state_dir, "",
          "where this node keeps its identity and the id of its pool across restarts (default: "
          "$XDG_STATE_HOME/unipool/node-NAME, else ~/.local/state/unipool/node-NAME)");
ABSL_FLAG(std::string, ssd_dir, "",
          "keep a flash tier of pages in segment files in this folder (created when missing), "
          "found again after a crash or a reboot; needs --ssd-size (default: no flash tier)");
ABSL_FLAG(std::string, ssd_size, "",
          "bytes of disk the flash tier may use under --ssd-dir, e.g. 2TiB (at least 64MiB)");
ABSL_FLAG(std::string, address_file, "",
          "write the bound data-path HOST:PORT to this file once serving");

namespace {

constexpr char kProgram[] = "unipool-node";

// `list` is one or more HOST:PORT, comma-separated; else exit 2 naming `flag`.
void RequireHostPorts(const char* flag, const std::string& list) {
  std::vector<std::string> addresses = absl::StrSplit(list, ',');
  for (const std::string& address : addresses) {
    if (!unipool::ParseHostPort(address).ok()) {
      unipool::ExitBadUsage(kProgram, absl::StrFormat("%s: '%s' is not HOST:PORT", flag, address));
    }
  }
}

// The nearest folder of `path` (itself included) that exists.
std::filesystem::path ExistingAncestor(std::filesystem::path path) {
  std::error_code error;
  path = std::filesystem::absolute(path, error);
  while (!std::filesystem::exists(path, error) && path.has_parent_path() &&
         path != path.parent_path()) {
    path = path.parent_path();
  }
  return path;
}

// --ssd-dir and --ssd-size: both or neither, a folder, a size the disk has.
void FlashFromFlags(unipool::NodeOptions& options) {
  std::string dir = absl::GetFlag(FLAGS_ssd_dir);
  std::string size_text = absl::GetFlag(FLAGS_ssd_size);
  if (dir.empty() && size_text.empty()) return;
  if (dir.empty() || size_text.empty()) {
    unipool::ExitBadUsage(kProgram, "--ssd-dir and --ssd-size go together");
  }
  auto size = unipool::ParseSize(size_text);
  if (!size.ok()) {
    unipool::ExitBadUsage(kProgram, "--ssd-size: " + std::string(size.status().message()));
  }
  if (*size < unipool::NodeFlash::kMinSize) {
    unipool::ExitBadUsage(kProgram,
                          absl::StrFormat("--ssd-size %s is under the %s minimum", size_text,
                                          unipool::FormatSize(unipool::NodeFlash::kMinSize)));
  }
  std::error_code error;
  if (std::filesystem::exists(dir, error) && !std::filesystem::is_directory(dir, error)) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--ssd-dir %s is not a folder", dir));
  }
  std::filesystem::path disk = ExistingAncestor(dir);
  std::filesystem::space_info space = std::filesystem::space(disk, error);
  if (!error && *size > space.capacity) {
    unipool::ExitBadUsage(kProgram,
                          absl::StrFormat("--ssd-size %s is more than the %s disk of %s", size_text,
                                          unipool::FormatSize(space.capacity), disk.string()));
  }
  options.ssd_dir = dir;
  options.ssd_size = *size;
}

// Every flag checked before anything is created; a bad one exits 2.
unipool::NodeOptions OptionsFromFlags() {
  unipool::NodeOptions options;
  auto size = unipool::ParseSize(absl::GetFlag(FLAGS_pool_size));
  if (!size.ok()) {
    unipool::ExitBadUsage(kProgram, "--pool-size: " + std::string(size.status().message()));
  }
  if (*size == 0) unipool::ExitBadUsage(kProgram, "--pool-size must be more than 0 bytes");
  uint64_t memory = unipool::PhysicalMemoryBytes();
  if (memory != 0 && *size > memory && !absl::GetFlag(FLAGS_allow_overcommit)) {
    unipool::ExitBadUsage(kProgram,
                          absl::StrFormat("--pool-size %s is more than this machine's %s of memory "
                                          "(--allow-overcommit to insist)",
                                          unipool::FormatSize(*size), unipool::FormatSize(memory)));
  }
  // A slab too small for one page of any size is a typo, not a node.
  constexpr uint64_t kMinPoolSize = 1u << 20;
  if (*size < kMinPoolSize) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--pool-size %s is under the 1 MiB minimum",
                                                    absl::GetFlag(FLAGS_pool_size)));
  }
  options.pool_size = *size;
  for (const char* flag : {"rdma", "shm"}) {
    std::string value = absl::GetFlag(flag[0] == 'r' ? FLAGS_rdma : FLAGS_shm);
    if (value != "auto" && value != "off") {
      unipool::ExitBadUsage(kProgram,
                            absl::StrFormat("--%s must be auto or off, not '%s'", flag, value));
    }
  }
  options.advertise = absl::GetFlag(FLAGS_advertise);
  if (!options.advertise.empty()) RequireHostPorts("--advertise", options.advertise);
  options.directory = absl::GetFlag(FLAGS_directory);
  RequireHostPorts("--directory", options.directory);
  options.listen = absl::GetFlag(FLAGS_listen);
  RequireHostPorts("--listen", options.listen);
  options.name = absl::GetFlag(FLAGS_name);
  options.rdma = absl::GetFlag(FLAGS_rdma) != "off";
  options.rdma_devices =
      unipool::RdmaDeviceNames(absl::GetFlag(FLAGS_rdma_devices), absl::GetFlag(FLAGS_rdma_device));
  options.slab_name = absl::GetFlag(FLAGS_slab_name);
  options.shm = absl::GetFlag(FLAGS_shm) != "off";
  options.prefault = absl::GetFlag(FLAGS_prefault);
  options.prefault_threads = absl::GetFlag(FLAGS_prefault_threads);
  if (options.prefault_threads < 0) {
    unipool::ExitBadUsage(kProgram, absl::StrFormat("--prefault-threads must be 0 (one per core) "
                                                    "or more, not %d",
                                                    options.prefault_threads));
  }
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  FlashFromFlags(options);
  options.server = unipool::ServerOptionsFromFlags(kProgram, "");
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  unipool::BlockTerminationSignals();
  unipool::ParseFlags(argc, argv,
                      "unipool-node --directory HOST:PORT --pool-size SIZE [--listen HOST:PORT]");
  absl::StatusOr<std::unique_ptr<unipool::Node>> node = unipool::Node::Start(OptionsFromFlags());
  if (!node.ok()) {
    if (absl::IsInvalidArgument(node.status())) {
      unipool::ExitBadUsage(kProgram, std::string(node.status().message()));
    }
    std::cerr << "unipool-node: " << node.status().message() << "\n";
    return 1;
  }
  if (std::string file = absl::GetFlag(FLAGS_address_file); !file.empty()) {
    unipool::WriteFileAtomically(file, (*node)->address() + "\n");
  }
  int signal = unipool::WaitForTerminationSignal();
  unipool::LogInfo("signal %d: stopping", signal);
  (*node)->Stop();
  unipool::LogInfo("stopped");
  return 0;
}
