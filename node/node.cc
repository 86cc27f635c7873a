#include "unipool/node/node.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_format.h"
#include "unipool/common/capability.h"
#include "unipool/common/log.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/platform/memory.h"

namespace unipool {
namespace {

// Faults the slab in before serving: a put then never waits for the kernel
// to find a page. Logged with its rate, since it is most of the start time
// of a large node.
void PrefaultSlab(Slab& slab, int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  absl::Duration took = slab.Prefault(threads);
  double seconds = absl::ToDoubleSeconds(took);
  double gib = static_cast<double>(slab.size()) / (1ull << 30);
  LogInfo("slab of %s faulted in in %.2f s (%.2f s per GiB, %d threads)", FormatSize(slab.size()),
          seconds, gib > 0 ? seconds / gib : 0.0, slab.size() >= (1ull << 30) ? threads : 1);
}

// How the slab's pages are backed, for the start log. Without huge pages
// every client's first write into each page of the slab faults (see
// SharedHugePagesMode), which the node's prefault does not prevent: a put
// into a new part of the slab then runs at a fraction of memcpy's speed.
std::string SlabPages(const Slab& slab) {
  if (slab.huge_pages()) return "explicit huge pages";
  std::string thp = platform::SharedHugePagesMode();
  if (thp.empty()) return "normal pages";
  if (thp == "never" || thp == "deny") {
    return absl::StrFormat(
        "normal pages: no huge pages reserved and shmem THP is '%s', so each client's first "
        "write into each page of the slab faults (see docs/same-host.md on huge pages)",
        thp);
  }
  return absl::StrFormat("transparent huge pages where the kernel has them (shmem THP '%s')", thp);
}

std::string HostName() {
  char hostname[256] = "localhost";
  gethostname(hostname, sizeof hostname - 1);
  return hostname;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  std::unique_ptr<Node> node(new Node(std::move(options)));
  RETURN_IF_ERROR(node->StartSlab());
  RETURN_IF_ERROR(node->OpenFlash());
  node->StartRdma();
  RETURN_IF_ERROR(node->StartService());
  RETURN_IF_ERROR(node->OpenIdentity());
  node->StartShare();
  node->StartDirectoryLink();
  return node;
}

void Node::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (link_ != nullptr) link_->Stop();
  share_.reset();
  if (service_ != nullptr) service_->Stop();
}

absl::Status Node::StartSlab() {
  // With a slab name the slab outlives this process (see Slab::OpenShared).
  bool reused = false;
  ASSIGN_OR_RETURN(slab_, options_.slab_name.empty()
                              ? Slab::Create(options_.pool_size)
                              : Slab::OpenShared(options_.slab_name, options_.pool_size, &reused));
  if (options_.prefault) PrefaultSlab(*slab_, options_.prefault_threads);
  LogInfo("slab of %s mapped with %s (%s platform, %s pages, size %s)", FormatSize(slab_->size()),
          SlabPages(*slab_), platform::Name(), FormatSize(platform::PageSize()),
          slab_->size_fixed() ? "sealed" : "not sealed");
  if (!options_.slab_name.empty()) {
    LogInfo("slab in shared memory %s: %s", options_.slab_name,
            reused ? "found intact, pages kept" : "new");
  }
  return absl::OkStatus();
}

// The flash tier's index is rebuilt from its segments before the node serves,
// so what survived a crash or a reboot is known from the start.
absl::Status Node::OpenFlash() {
  if (options_.ssd_dir.empty()) return absl::OkStatus();
  absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(flash_, NodeFlash::Open(options_.ssd_dir, options_.ssd_size, slab_.get()));
  LogInfo("flash tier of up to %s in %s ready in %.2f s", FormatSize(options_.ssd_size),
          options_.ssd_dir, absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

// RDMA is never fatal: without a verbs library or device the node serves
// TCP (and shm), and says why.
void Node::StartRdma() {
  if (!options_.rdma) {
    LogInfo("RDMA off; serving TCP only");
    return;
  }
  absl::StatusOr<std::unique_ptr<NodeRdma>> rdma =
      NodeRdma::Create(NodeRdmaOptions{options_.rdma_devices}, *slab_);
  if (rdma.ok()) {
    rdma_ = *std::move(rdma);
  } else {
    LogInfo("RDMA unavailable (%s); serving TCP only", rdma.status().message());
  }
}

absl::Status Node::StartService() {
  service_ =
      std::make_unique<NodeService>("unipool-node", slab_.get(), rdma_.get(), options_.server);
  if (options_.server.cluster_key != nullptr) {
    absl::StatusOr<CapabilityKey> key = CapabilityKey::FromCredential(*options_.server.cluster_key);
    if (!key.ok()) {
      return absl::InvalidArgumentError("--key-file: " + std::string(key.status().message()));
    }
    service_->RequireCapabilities(*std::move(key));
  }
  if (flash_ != nullptr) service_->ServeFlash(flash_.get());
  RETURN_IF_ERROR(service_->Start(options_.listen));
  // The default name and address depend on the bound port.
  data_address_ = options_.advertise.empty() ? service_->address() : options_.advertise;
  name_ = options_.name;
  if (name_.empty()) {
    absl::StatusOr<HostPort> bound = ParseHostPort(service_->address());
    name_ = HostName() + ":" + std::to_string(bound.ok() ? bound->port : 0);
  }
  SetLogComponent("node " + name_);
  LogInfo("data path serving on %s (advertised as %s)", service_->address(), data_address_);
  return absl::OkStatus();
}

absl::Status Node::OpenIdentity() {
  std::string dir =
      options_.state_dir.empty() ? NodeIdentity::DefaultDir(name_) : options_.state_dir;
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        "--state-dir is needed: neither $XDG_STATE_HOME nor $HOME is set");
  }
  ASSIGN_OR_RETURN(NodeIdentity identity, NodeIdentity::Open(dir));
  identity_ = std::make_unique<NodeIdentity>(std::move(identity));
  LogInfo("state in %s (%s)", dir,
          identity_->pool_id().empty() ? "no pool joined yet" : "pool " + identity_->pool_id());
  return absl::OkStatus();
}

// Same-host clients map the slab (transport/shm/shm_protocol.h).
void Node::StartShare() {
  if (!options_.shm) return;
  absl::StatusOr<std::unique_ptr<SlabShare>> share = SlabShare::Start(slab_.get(), data_address_);
  if (share.ok()) {
    share_ = *std::move(share);
    LogInfo("slab shared with clients on this machine (shm)");
  } else {
    LogWarning("not sharing the slab on this machine: %s", share.status().message());
  }
}

void Node::StartDirectoryLink() {
  DirectoryLinkOptions link;
  link.directory_address = options_.directory;
  link.name = name_;
  link.host = HostName();
  link.data_address = data_address_;
  if (rdma_ != nullptr) {
    for (const std::string& t : rdma_->transports()) link.transports.push_back(t);
    link.rdma_ports = [rdma = rdma_.get()] { return rdma->Ports(); };
  }
  if (share_ != nullptr) link.transports.push_back("shm");
  if (flash_ != nullptr) {
    link.flash_counts = [flash = flash_.get(), capacity = options_.ssd_size] {
      flash::FlashCounters c = flash->counters();
      return FlashStoreCounts{.capacity = capacity,
                              .bytes = c.bytes,
                              .objects = c.objects,
                              .demotions = c.demotions,
                              .refused = c.refused,
                              .hits = c.hits,
                              .promotions = c.promotions,
                              .misses = c.misses,
                              .lru_drops = c.lru_drops,
                              .bad_pages = c.bad_pages,
                              .write_failures = c.write_failures,
                              .recovered = c.recovered};
    };
    announcer_ = std::make_unique<FlashAnnouncer>(flash_.get(), options_.directory, name_);
    link.on_new_slab = [announcer = announcer_.get()](uint32_t id) { announcer->Announce(id); };
  }
  link_ =
      std::make_unique<DirectoryLink>(link, slab_.get(), &service_->counters(), identity_.get());
  link_->Start();
}

}  // namespace unipool
