// unipool-node: exports a slab of this machine's memory to the pool.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "unipool/common/log.h"
#include "unipool/common/process.h"
#include "unipool/common/server_flags.h"
#include "unipool/common/slab.h"
#include "unipool/common/socket.h"
#include "unipool/common/units.h"
#include "unipool/node/directory_link.h"
#include "unipool/node/node_service.h"
#include "unipool/platform/memory.h"
#include "unipool/shm/slab_share.h"
#include "unipool/verbs/node_rdma.h"
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
ABSL_FLAG(std::string, address_file, "",
          "write the bound data-path HOST:PORT to this file once serving");

namespace {

// Faults the slab in before serving: a put then never waits for the kernel
// to find a page. Logged with its rate, since it is most of the start time
// of a large node.
void PrefaultSlab(unipool::Slab& slab, int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  absl::Duration took = slab.Prefault(threads);
  double seconds = absl::ToDoubleSeconds(took);
  double gib = static_cast<double>(slab.size()) / (1ull << 30);
  unipool::LogInfo("slab of %s faulted in in %.2f s (%.2f s per GiB, %d threads)",
                   unipool::FormatSize(slab.size()), seconds, gib > 0 ? seconds / gib : 0.0,
                   slab.size() >= (1ull << 30) ? threads : 1);
}

// How the slab's pages are backed, for the start log. Without huge pages
// every client's first write into each page of the slab faults (see
// SharedHugePagesMode), which the node's prefault does not prevent: a put
// into a new part of the slab then runs at a fraction of memcpy's speed.
std::string SlabPages(const unipool::Slab& slab) {
  if (slab.huge_pages()) return "explicit huge pages";
  std::string thp = unipool::platform::SharedHugePagesMode();
  if (thp.empty()) return "normal pages";
  if (thp == "never" || thp == "deny") {
    return absl::StrFormat(
        "normal pages: no huge pages reserved and shmem THP is '%s', so each client's first "
        "write into each page of the slab faults (see the README's huge pages note)",
        thp);
  }
  return absl::StrFormat("transparent huge pages where the kernel has them (shmem THP '%s')", thp);
}

}  // namespace

int main(int argc, char** argv) {
  unipool::BlockTerminationSignals();
  unipool::ParseFlags(argc, argv,
                      "unipool-node --directory HOST:PORT --pool-size SIZE [--listen HOST:PORT]");
  constexpr char kProgram[] = "unipool-node";
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
  for (const char* flag : {"rdma", "shm"}) {
    std::string value = absl::GetFlag(flag[0] == 'r' ? FLAGS_rdma : FLAGS_shm);
    if (value != "auto" && value != "off") {
      unipool::ExitBadUsage(kProgram,
                            absl::StrFormat("--%s must be auto or off, not '%s'", flag, value));
    }
  }
  for (absl::string_view address :
       absl::StrSplit(absl::GetFlag(FLAGS_advertise), ',', absl::SkipEmpty())) {
    if (!unipool::ParseHostPort(std::string(address)).ok()) {
      unipool::ExitBadUsage(kProgram, absl::StrFormat("--advertise: '%s' is not HOST:PORT", address));
    }
  }
  unipool::ServerOptions server_options = unipool::ServerOptionsFromFlags(kProgram, "");
  // With --slab-name the slab outlives this process (see Slab::OpenShared).
  bool slab_reused = false;
  std::string slab_name = absl::GetFlag(FLAGS_slab_name);
  auto slab = slab_name.empty() ? unipool::Slab::Create(*size)
                                : unipool::Slab::OpenShared(slab_name, *size, &slab_reused);
  if (!slab.ok()) {
    std::cerr << "unipool-node: " << slab.status().message() << "\n";
    return 1;
  }
  if (absl::GetFlag(FLAGS_prefault)) PrefaultSlab(**slab, absl::GetFlag(FLAGS_prefault_threads));
  char hostname[256] = "localhost";
  gethostname(hostname, sizeof hostname - 1);

  std::unique_ptr<unipool::NodeRdma> rdma;
  std::string rdma_note = "off (--rdma=off)";
  if (absl::GetFlag(FLAGS_rdma) != "off") {
    unipool::NodeRdmaOptions rdma_options;
    rdma_options.devices = unipool::RdmaDeviceNames(absl::GetFlag(FLAGS_rdma_devices),
                                                    absl::GetFlag(FLAGS_rdma_device));
    auto created = unipool::NodeRdma::Create(rdma_options, **slab);
    if (created.ok()) {
      rdma = std::move(*created);
      rdma_note = "";
    } else {
      rdma_note = std::string(created.status().message());
    }
  }

  // The name depends on the bound port, so start serving first.
  unipool::NodeService service("unipool-node", slab->get(), rdma.get(), server_options);
  if (server_options.cluster_key != nullptr) {
    auto capability_key = unipool::CapabilityKey::FromCredential(*server_options.cluster_key);
    if (!capability_key.ok()) {
      unipool::ExitBadUsage(kProgram,
                            "--key-file: " + std::string(capability_key.status().message()));
    }
    service.RequireCapabilities(*std::move(capability_key));
  }
  if (absl::Status s = service.Start(absl::GetFlag(FLAGS_listen)); !s.ok()) {
    std::cerr << "unipool-node: " << s.message() << "\n";
    return 1;
  }
  std::string data_address = absl::GetFlag(FLAGS_advertise);
  if (data_address.empty()) data_address = service.address();
  std::string name = absl::GetFlag(FLAGS_name);
  if (name.empty()) {
    auto hp = unipool::ParseHostPort(service.address());
    name = std::string(hostname) + ":" + std::to_string(hp.ok() ? hp->port : 0);
  }
  unipool::SetLogComponent("node " + name);
  std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  if (state_dir.empty()) state_dir = unipool::NodeIdentity::DefaultDir(name);
  if (state_dir.empty()) {
    unipool::ExitBadUsage(kProgram,
                          "--state-dir is needed: neither $XDG_STATE_HOME nor $HOME is set");
  }
  auto state = unipool::NodeIdentity::Open(state_dir);
  if (!state.ok()) {
    std::cerr << "unipool-node: " << state.status().message() << "\n";
    return 1;
  }
  unipool::LogInfo("state in %s (%s)", state_dir,
                   state->pool_id().empty() ? "no pool joined yet" : "pool " + state->pool_id());
  unipool::LogInfo("slab of %s mapped with %s (%s platform, %s pages, size %s)",
                   unipool::FormatSize((*slab)->size()), SlabPages(**slab),
                   unipool::platform::Name(), unipool::FormatSize(unipool::platform::PageSize()),
                   (*slab)->size_fixed() ? "sealed" : "not sealed");
  unipool::LogInfo("data path serving on %s (advertised as %s)", service.address(), data_address);
  if (!slab_name.empty()) {
    unipool::LogInfo("slab in shared memory %s: %s", slab_name,
                     slab_reused ? "found intact, pages kept" : "new");
  }
  if (rdma == nullptr) unipool::LogInfo("RDMA unavailable (%s); serving TCP only", rdma_note);
  // Same-host clients map the slab (transport/shm/shm_protocol.h).
  std::unique_ptr<unipool::SlabShare> share;
  if (absl::GetFlag(FLAGS_shm) != "off") {
    auto started = unipool::SlabShare::Start(slab->get(), data_address);
    if (started.ok()) {
      share = std::move(*started);
      unipool::LogInfo("slab shared with clients on this machine (shm)");
    } else {
      unipool::LogWarning("not sharing the slab on this machine: %s", started.status().message());
    }
  }

  unipool::DirectoryLinkOptions link_options;
  link_options.directory_address = absl::GetFlag(FLAGS_directory);
  link_options.name = name;
  link_options.host = hostname;
  link_options.data_address = data_address;
  if (rdma != nullptr) {
    for (const std::string& t : rdma->transports()) link_options.transports.push_back(t);
    link_options.rdma_ports = [&rdma] { return rdma->Ports(); };
  }
  if (share != nullptr) link_options.transports.push_back("shm");
  unipool::DirectoryLink link(link_options, slab->get(), &service.counters(), &*state);
  link.Start();
  if (std::string file = absl::GetFlag(FLAGS_address_file); !file.empty()) {
    unipool::WriteFileAtomically(file, service.address() + "\n");
  }

  int signal = unipool::WaitForTerminationSignal();
  unipool::LogInfo("signal %d: stopping", signal);
  link.Stop();
  share.reset();
  service.Stop();
  unipool::LogInfo("stopped");
  return 0;
}
