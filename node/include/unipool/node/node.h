// A pool node in one object: it starts from NodeOptions in order (the slab,
// the flash tier, RDMA on its ports, the data-path service, its identity, the same-host
// share, the link to the directory) and stops in reverse. unipool-node's
// main() parses flags into NodeOptions and runs one; tests may run one in
// their own process.
//
// Thread safety: Start and Stop from one thread; the node serves on its own
// threads in between.
#ifndef UNIPOOL_NODE_NODE_H_
#define UNIPOOL_NODE_NODE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "unipool/common/server.h"
#include "unipool/common/slab.h"
#include "unipool/node/directory_link.h"
#include "unipool/node/flash_announcer.h"
#include "unipool/node/node_flash.h"
#include "unipool/node/node_identity.h"
#include "unipool/node/node_service.h"
#include "unipool/shm/slab_share.h"
#include "unipool/verbs/node_rdma.h"

namespace unipool {

struct NodeOptions {
  uint64_t pool_size = 0;  // slab bytes; REQUIRED > 0
  std::string directory = "127.0.0.1:7300";
  std::string listen = "127.0.0.1:7301";  // port 0: any
  // Addresses clients use, "a:p,b:p" tried in order; empty: the bound one.
  std::string advertise;
  std::string name;  // empty: HOSTNAME:PORT
  // RDMA on every port of `rdma_devices` (empty: of every device), when
  // this machine has a verbs library and a device; else TCP only.
  bool rdma = true;
  std::vector<std::string> rdma_devices;
  // Non-empty: the slab lives in this shared-memory object and outlives the
  // process (Slab::OpenShared).
  std::string slab_name;
  bool shm = true;  // hand the slab to same-host clients
  bool prefault = true;
  int prefault_threads = 0;  // 0: one per core
  std::string state_dir;     // empty: NodeIdentity::DefaultDir(name)
  // Non-empty: the flash tier's segment files live here (created when
  // missing) and use at most `ssd_size` bytes (>= NodeFlash::kMinSize); its
  // pages are found again at start. Empty: no flash tier.
  std::string ssd_dir;
  uint64_t ssd_size = 0;
  ServerOptions server;  // caps, timeouts, TLS, the cluster key
};

class Node {
 public:
  // Starts every part in order. InvalidArgument for options that cannot
  // work (no state folder to use, a key that makes no capability key); any
  // other error is the failing part's, and what started is stopped again.
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);
  ~Node() { Stop(); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Stops in reverse order: the directory link, the share, the service.
  // Idempotent.
  void Stop();

  const std::string& name() const { return name_; }
  // The bound data-path HOST:PORT (with --listen port 0, the chosen port).
  std::string address() const { return service_->address(); }
  // The flash tier, or nullptr without --ssd-dir.
  NodeFlash* flash() const { return flash_.get(); }

 private:
  explicit Node(NodeOptions options) : options_(std::move(options)) {}
  absl::Status StartSlab();
  absl::Status OpenFlash();
  void StartRdma();
  absl::Status StartService();
  absl::Status OpenIdentity();
  void StartShare();
  void StartDirectoryLink();

  const NodeOptions options_;
  std::string name_;
  std::string data_address_;
  // In start order: destroyed in reverse.
  std::unique_ptr<Slab> slab_;
  std::unique_ptr<NodeFlash> flash_;
  std::unique_ptr<FlashAnnouncer> announcer_;  // with flash_; used by link_
  std::unique_ptr<NodeRdma> rdma_;
  std::unique_ptr<NodeService> service_;
  std::unique_ptr<NodeIdentity> identity_;
  std::unique_ptr<SlabShare> share_;
  std::unique_ptr<DirectoryLink> link_;
  bool stopped_ = false;
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_NODE_H_
