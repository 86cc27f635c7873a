// A pool node's one request service, on its TCP port: the TCP data path
// (Read and Write of byte ranges inside its slab), RDMA connection setup,
// probes, UC reads and verifies (handed to NodeRdma), and the directory's
// checksums and copies. Every range is bounds-checked and, in a pool with a
// key, checked against the directory's capability; the directory decides
// what lives where, the node only guards its memory.
//
// Thread safety: thread-safe (quick requests run on the server's event loop,
// the others on its workers; counters are atomic; concurrent access to the
// same bytes is prevented by the directory's allocation, not here).
#ifndef UNIPOOL_NODE_NODE_SERVICE_H_
#define UNIPOOL_NODE_NODE_SERVICE_H_

#include <atomic>
#include <optional>
#include <string>

#include "unipool/common/capability.h"
#include "unipool/common/server.h"
#include "unipool/common/slab.h"
#include "unipool/node/node_flash.h"
#include "unipool/node/write_revocations.h"
#include "unipool/verbs/node_rdma.h"

namespace unipool {

struct NodeDataCounters {
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> writes{0};
};

class NodeService : public FrameHandler {
 public:
  // `slab` and `rdma` (null: TCP only) must outlive the service. `server`
  // holds connection caps and timeouts; `name` replaces its name.
  NodeService(std::string name, Slab* slab, NodeRdma* rdma = nullptr, ServerOptions server = {});
  ~NodeService() override;

  // From then on every Read, Write and Copy range needs a capability the
  // directory issued (capability.h) under `key`, and so does every range a
  // UC client asks to be RDMA-written to it (RdmaReadTo: Read) or checksummed
  // (RdmaVerify: Write). RC's one-sided reads and writes never reach the
  // node and cannot be checked. Without: a pool with no key, nothing is
  // checked. Call before Start. Write capabilities the directory revokes
  // (RevokeWrites: their put was committed or aborted) are refused after.
  void RequireCapabilities(CapabilityKey key) { capability_key_ = std::move(key); }
  // The node's flash tier (must outlive the service): from then on it serves
  // the directory's FlashDemote and FlashPromote. Call before Start.
  void ServeFlash(NodeFlash* flash) { flash_ = flash; }

  absl::Status Start(const std::string& listen_address);
  void Stop();
  const std::string& address() const { return server_.address(); }
  const NodeDataCounters& counters() const { return counters_; }
  const WriteRevocations& revocations() const { return revocations_; }

  absl::Status Handle(ServerConnection& conn, const wire::Message& request) override;
  // Reads and writes of at most kQuickPayloadBytes: a copy between the slab
  // and memory, cheaper than handing the request to a worker and back.
  bool IsQuick(const wire::Message& request) const override;

 private:
  // Token holders may read and write (client, admin); only the cluster key
  // or an admin orders checksums and copies. Peers of a node without a key
  // may do everything.
  static absl::Status Authorize(const Principal& who, const wire::Message& request);
  // Resolves every range to slab memory, or fails naming the first bad one.
  absl::StatusOr<std::vector<std::span<uint8_t>>> ResolveRanges(
      const flatbuffers::Vector<const wire::Range*>* ranges, uint64_t* total) const;
  // With capabilities required: OK when range i is inside capabilities[i],
  // granting `access`, for this slab (for a Copy, to `copy`'s target), and
  // for a Write not revoked; else PermissionDenied naming the first range
  // refused.
  absl::Status CheckCapabilities(const flatbuffers::Vector<const wire::Range*>* ranges,
                                 const flatbuffers::Vector<const wire::Capability*>* capabilities,
                                 wire::Access access, const wire::Copy* copy = nullptr) const;
  // Logs one line naming the `request` refused, its peer and why, and
  // answers it with an Error of `refusal`, after reading off a Write's
  // payload so that the writer reads the refusal rather than a reset
  // connection (clients drop a connection after an Error).
  absl::Status Refuse(ServerConnection& conn, wire::Body request, const absl::Status& refusal);
  absl::Status HandleRead(ServerConnection& conn, const wire::Read& request);
  absl::Status HandleWrite(ServerConnection& conn, const wire::Write& request);
  absl::Status HandleRdmaReadTo(ServerConnection& conn, const wire::RdmaReadTo& request);
  absl::Status HandleRdmaVerify(ServerConnection& conn, const wire::RdmaVerify& request);
  // Lifecycle requests from the directory (node_lifecycle.cc).
  absl::Status HandleChecksum(ServerConnection& conn, const wire::Checksum& request);
  absl::Status HandleCopy(ServerConnection& conn, const wire::Copy& request);
  absl::Status HandleRevokeWrites(ServerConnection& conn, const wire::RevokeWrites& request);
  // The flash tier's requests from the directory (node_flash_service.cc).
  absl::Status HandleFlashDemote(ServerConnection& conn, const wire::FlashDemote& request);
  absl::Status HandleFlashPromote(ServerConnection& conn, const wire::FlashPromote& request);
  // A client's read of pages straight from flash (node_flash_read.cc).
  absl::Status HandleFlashRead(ServerConnection& conn, const wire::FlashRead& request);
  absl::Status CheckFlashReadCapabilities(
      const flatbuffers::Vector<flatbuffers::Offset<wire::FlashItem>>& items,
      const flatbuffers::Vector<const wire::Capability*>* capabilities) const;

  Slab* const slab_;
  NodeRdma* const rdma_;
  std::optional<CapabilityKey> capability_key_;  // set before Start, then constant
  NodeFlash* flash_ = nullptr;                   // set before Start, then constant
  FrameServer server_;
  NodeDataCounters counters_;
  WriteRevocations revocations_;
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_NODE_SERVICE_H_
