// The directory's network front end: decodes requests, calls Directory,
// encodes replies. Also runs the periodic Tick.
//
// Thread safety: thread-safe (requests run on the server's worker threads).
#ifndef UNIPOOL_DIRECTORY_DIRECTORY_SERVICE_H_
#define UNIPOOL_DIRECTORY_DIRECTORY_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "unipool/common/server.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/flash_calls.h"
#include "unipool/directory/lifecycle_worker.h"
#include "unipool/directory/metrics.h"
#include "unipool/directory/node_prober.h"
#include "unipool/directory/tensor_catalog.h"

namespace unipool {

class DirectoryService : public FrameHandler {
 public:
  // `directory` must outlive the service. `server` holds connection caps and
  // timeouts (its name becomes "unipool-directory"). Start opens the
  // directory's TensorCatalog with `tensor_options`.
  explicit DirectoryService(Directory* directory, ServerOptions server = {},
                            TensorCatalogOptions tensor_options = {});
  ~DirectoryService() override;

  absl::Status Start(const std::string& listen_address);
  void Stop();
  const std::string& address() const { return server_.address(); }
  // What a StepDown request (admin) does: `accept` says whether the
  // leadership can be handed over (its error is the reply); once the Ack is
  // sent, `start` begins the handover (which stops this service: after the
  // reply, so the admin hears it). Unset (a lone directory): the reply is
  // FailedPrecondition. Set before Start.
  void SetStepDown(std::function<absl::Status()> accept, std::function<void()> start) {
    step_down_accept_ = std::move(accept);
    step_down_start_ = std::move(start);
  }
  // Request counters and their per-second history (for the dashboard).
  DirectoryMetrics& metrics() { return metrics_; }

  absl::Status Handle(ServerConnection& conn, const wire::Message& request) override;
  // The put path, lookups and exists: in-memory work and at most one
  // catalog write that waits for no fsync. With --sync=always a write waits
  // for one, so mutations go to workers, where concurrent commits share it;
  // and just after a restart, while requests wait for the nodes, none.
  bool IsQuick(const wire::Message& request) const override;

 private:
  absl::Status HandleRegister(ServerConnection& conn, const wire::RegisterNode& request);
  absl::Status HandleHeartbeat(ServerConnection& conn, const wire::Heartbeat& request);
  absl::Status HandleFlashAnnounce(ServerConnection& conn, const wire::FlashAnnounce& request);
  absl::Status HandleFabricReport(ServerConnection& conn, const wire::FabricReport& request);
  absl::Status HandlePutStart(ServerConnection& conn, const wire::PutStart& request);
  absl::Status HandlePutCommit(ServerConnection& conn, const wire::PutCommit& request);
  absl::Status HandlePutAbort(ServerConnection& conn, const wire::PutAbort& request);
  // How long a reservation lives, as replies state it.
  uint32_t PutTimeoutMs() const;
  // Nodes a peer could not reach: checked by the directory's probe first,
  // whoever the peer is (NodeProber::CheckReports).
  void ReportUnreachable(const ServerConnection& conn, std::span<const NodeId> ids);
  absl::Status HandleLookup(ServerConnection& conn, const wire::Lookup& request);
  // Before a lookup: the keys on flash only are read back into memory by a
  // node whose flash holds them (docs/flash.md), so the lookup finds them.
  void PromoteFromFlash(std::span<const std::string_view> keys, bool prefix);
  absl::Status HandleExists(ServerConnection& conn, const wire::Exists& request);
  absl::Status HandleRemove(ServerConnection& conn, const wire::Remove& request);
  absl::Status HandleStatus(ServerConnection& conn);
  absl::Status HandleStepDown(ServerConnection& conn);
  absl::Status HandleList(ServerConnection& conn, const wire::List& request);
  absl::Status HandleMetrics(ServerConnection& conn, const wire::GetMetrics& request);
  // Lifecycle requests (directory_lifecycle_service.cc).
  absl::Status HandlePin(ServerConnection& conn, const wire::Pin& request);
  absl::Status HandleEvict(ServerConnection& conn, const wire::Evict& request);
  absl::Status HandleDrain(ServerConnection& conn, const wire::Drain& request);
  // Tensors and models (tensor_service.cc).
  absl::Status HandleTensorPublish(ServerConnection& conn, const wire::TensorPublish& request);
  absl::Status HandleTensorLookup(ServerConnection& conn, const wire::TensorLookup& request);
  absl::Status HandleTensorList(ServerConnection& conn, const wire::TensorList& request);
  absl::Status HandleTensorRemove(ServerConnection& conn, const wire::TensorRemove& request);
  absl::Status HandleModelPin(ServerConnection& conn, const wire::ModelPin& request);
  void TickLoop();

  Directory* const directory_;
  const TensorCatalogOptions tensor_options_;
  std::function<absl::Status()> step_down_accept_;
  std::function<void()> step_down_start_;
  std::unique_ptr<TensorCatalog> tensors_;  // set by Start, before serving
  DirectoryMetrics metrics_;
  FrameServer server_;
  absl::Notification stop_;
  std::thread ticker_;
  // Moves drained copies node to node and verifies readmitted slabs.
  LifecycleWorker lifecycle_;
  // Probes nodes clients report unreachable.
  NodeProber prober_;
  // Promotions from the nodes' flash (lookups).
  FlashCalls flash_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DIRECTORY_SERVICE_H_
