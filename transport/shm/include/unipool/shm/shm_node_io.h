// NodeIo for nodes on this machine: maps the node's slab (handed over a Unix
// socket, transport/shm/shm_protocol.h) and copies pages between it and the
// caller's memory with memcpy. The node's CPU does nothing; the only costs
// are the copy and the get's checksum.
//
// Every other node, and a node on this machine that does not share its slab
// (started with --shm=off, another user, an older version), is served by
// the fallback NodeIo. A node that could not be mapped is tried again after
// kRetryAfter. A mapping is dropped as soon as its node's socket hangs up
// (the node process ended: a restarted node has other memory).
//
// Thread safety: thread-safe. Concurrent copies into one slab are safe as
// far as the directory's allocation keeps their ranges apart.
#ifndef UNIPOOL_SHM_SHM_NODE_IO_H_
#define UNIPOOL_SHM_SHM_NODE_IO_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/transport/node_io.h"

namespace unipool {

class ShmNodeIo : public NodeIo {
 public:
  // `fallback` serves the nodes that cannot be mapped; it must outlive this.
  explicit ShmNodeIo(NodeIo* fallback) : fallback_(fallback) {}
  ~ShmNodeIo() override;

  absl::Status Write(const std::string& node_address, std::span<const WriteOp> ops) override;
  absl::Status Read(const std::string& node_address, std::span<const ReadOp> ops) override;
  // "shm" when the last request was served through shared memory, else the
  // fallback's name.
  std::string_view name() const override;
  // Copies hash as they go; writes to a fallback that does not are hashed
  // first.
  bool HashesWhileWriting() const override { return true; }

  uint64_t shm_requests() const { return shm_requests_.load(); }
  uint64_t fallback_requests() const { return fallback_requests_.load(); }
  // Nodes whose slab is mapped now.
  size_t mapped_nodes() const;

  // How long a node that could not be mapped is left to the fallback before
  // trying again.
  static constexpr absl::Duration kRetryAfter = absl::Seconds(2);

 private:
  struct Mapping;
  // The node's mapped slab, or null: use the fallback.
  std::shared_ptr<Mapping> MappingFor(const std::string& address);
  // Connects to the node's slab share and maps what it hands over.
  static absl::StatusOr<std::unique_ptr<Mapping>> Map(const std::string& address);

  NodeIo* const fallback_;
  std::atomic<uint64_t> shm_requests_{0}, fallback_requests_{0};
  std::atomic<bool> last_was_shm_{false};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Mapping>> mapped_ ABSL_GUARDED_BY(mu_);
  // Nodes not mappable, and when to try again.
  absl::flat_hash_map<std::string, absl::Time> unmappable_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_SHM_SHM_NODE_IO_H_
