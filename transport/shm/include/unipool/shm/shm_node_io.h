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
#include "unipool/shm/copy_threads.h"
#include "unipool/shm/view_maps.h"
#include "unipool/shm/write_ahead.h"
#include "unipool/transport/node_io.h"

namespace unipool {

// One object's bytes in a node's slab, mapped read-only on their own (a
// write through them is SIGSEGV), for zero-copy reads (Client::GetView).
// Its own mapping can outlive the node's process and can be swapped for a
// private copy at the same address (Detach). Released, the mapping is kept
// for the next view of the same range (ViewMaps) unless it was detached.
//
// Thread safety: bytes() and node_alive() are thread-safe; Detach is called
// by one thread at a time.
class SlabView {
 public:
  ~SlabView();
  SlabView(const SlabView&) = delete;
  SlabView& operator=(const SlabView&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, length_}; }
  // False once the node's process has ended (its bytes stay readable here:
  // the mapping keeps the memory).
  bool node_alive() const;
  // Moves the bytes into private memory at the same address, so the node
  // may reuse its own memory while this view still reads them.
  absl::Status Detach();
  bool detached() const { return detached_; }

 private:
  friend class ShmNodeIo;
  SlabView() = default;
  std::shared_ptr<const void> node_;  // the node's mapping (its socket says whether it lives)
  bool (*alive_)(const void*) = nullptr;
  ViewMaps* maps_ = nullptr;      // where the mapping goes back (node_'s)
  uint64_t map_at_ = 0;           // the mapping's offset in the slab's fd
  const uint8_t* map_ = nullptr;  // page aligned
  uint64_t map_length_ = 0;
  const uint8_t* data_ = nullptr;  // the object, inside the map
  uint64_t length_ = 0;
  bool detached_ = false;
};

class ShmNodeIo : public NodeIo {
 public:
  // `fallback` serves the nodes that cannot be mapped; it must outlive this.
  // A batch's pages are copied by up to `copy_threads` threads at once
  // (ClientOptions::copy_threads; 1: all on the caller's thread).
  explicit ShmNodeIo(NodeIo* fallback, int copy_threads = 1)
      : fallback_(fallback), copy_threads_(copy_threads) {}
  ~ShmNodeIo() override;

  absl::Status Write(const std::string& node_address, std::span<const WriteOp> ops) override;
  absl::Status Read(const std::string& node_address, std::span<const ReadOp> ops) override;
  // "shm" when the last request was served through shared memory, else the
  // fallback's name.
  std::string_view name() const override;
  // Copies hash as they go; writes to a fallback that does not are hashed
  // first.
  bool HashesWhileWriting() const override { return true; }

  // A read-only view of [offset, +length) of the slab of the node at
  // `node_address`. FailedPrecondition when that node does not share its
  // slab with this process (another machine, --shm=off).
  absl::StatusOr<std::unique_ptr<SlabView>> MapView(const std::string& node_address,
                                                    uint64_t offset, uint64_t length);

  // Faults [offset, +length) of the node's slab in for writing on a
  // background thread (WriteAhead), for a reservation that a put will write
  // soon. Nothing when the node's slab is not mapped here.
  void PrepareWrite(const std::string& node_address, uint64_t offset, uint64_t length);
  // PrepareWrite ranges faulted in so far.
  uint64_t prepared_writes() const;

  uint64_t shm_requests() const { return shm_requests_.load(); }
  uint64_t fallback_requests() const { return fallback_requests_.load(); }
  // Nodes whose slab is mapped now.
  size_t mapped_nodes() const;

  // How long a node that could not be mapped is left to the fallback before
  // trying again.
  static constexpr absl::Duration kRetryAfter = absl::Seconds(2);
  // Slab space is faulted in for writing this much at a time (and each piece
  // once per process): a huge page's worth.
  static constexpr uint64_t kWritableChunk = 2ull << 20;

 private:
  struct Mapping;
  // The node's mapped slab, or null: use the fallback.
  std::shared_ptr<Mapping> MappingFor(const std::string& address);
  // Connects to the node's slab share and maps what it hands over.
  static absl::StatusOr<std::unique_ptr<Mapping>> Map(const std::string& address);

  NodeIo* const fallback_;
  CopyThreads copy_threads_;
  WriteAhead write_ahead_;
  std::atomic<uint64_t> shm_requests_{0}, fallback_requests_{0};
  std::atomic<bool> last_was_shm_{false};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Mapping>> mapped_ ABSL_GUARDED_BY(mu_);
  // Nodes not mappable, and when to try again.
  absl::flat_hash_map<std::string, absl::Time> unmappable_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_SHM_SHM_NODE_IO_H_
