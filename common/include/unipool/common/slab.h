// A node's slab: one contiguous mapping of memory that the pool exports.
// Backed by shareable memory (unipool/platform/memory.h: a sealed memfd on
// Linux, an unlinked shm object on macOS) so that same-host clients can map
// it; huge pages when the system has them reserved.
//
// Thread safety: the mapping itself is immutable after Create; concurrent
// reads and writes of its bytes are the callers' business.
#ifndef UNIPOOL_COMMON_SLAB_H_
#define UNIPOOL_COMMON_SLAB_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "unipool/platform/fd.h"
#include "unipool/platform/memory.h"

namespace unipool {

class Slab {
 public:
  // Maps `size` bytes (rounded up to the page size in use). Tries explicit
  // huge pages first (Linux, when reserved), then normal pages with
  // transparent huge pages advised. Pages are faulted in on first touch
  // unless Prefault is called. ResourceExhausted when the memory cannot be had.
  static absl::StatusOr<std::unique_ptr<Slab>> Create(uint64_t size);

  // A slab that outlives the process: the POSIX shared-memory object `name`
  // (e.g. "unipool-node0"), which stays in memory until the machine restarts
  // or it is unlinked. When it already holds a slab of `size` bytes (a node
  // process restarted on a machine that kept running), that slab and its id
  // are kept, so the directory readmits its pages (after verifying them);
  // otherwise a fresh slab with a new id replaces it. Normal pages, THP
  // advised. `*reused` tells which happened. `name`: at most 30 characters
  // (macOS's limit), InvalidArgument otherwise.
  static absl::StatusOr<std::unique_ptr<Slab>> OpenShared(const std::string& name, uint64_t size,
                                                          bool* reused);
  // Removes the shared-memory object `name` (its memory is freed once no
  // process maps it). NotFound when there is none.
  static absl::Status UnlinkShared(const std::string& name);
  ~Slab();
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  bool huge_pages() const { return huge_pages_; }
  // Nobody can truncate or grow the memory (see platform::SharedMemory).
  bool size_fixed() const { return size_fixed_; }
  // Faults in every page now (in `threads` threads for 1 GiB or more), so
  // that no later write faults; the bytes are unchanged. Returns the time
  // taken. REQUIRES: nobody writes the slab meanwhile (call before serving).
  absl::Duration Prefault(int threads);
  // Random identity of this memory's lifetime: a restarted node has a new
  // one, so the directory knows its old objects are gone.
  uint64_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  // Where byte 0 of the slab is in fd() (a shared slab has a header page
  // first); page aligned, for mapping the fd elsewhere.
  uint64_t fd_offset() const { return header_bytes_; }

  // The bytes [offset, offset+length) if they lie inside the slab, else
  // OutOfRange naming the range.
  absl::StatusOr<std::span<uint8_t>> Range(uint64_t offset, uint64_t length) const;

 private:
  // `data` is where the slab's byte 0 is mapped, `header_bytes` after the
  // start of the mapping of `memory`.
  Slab(platform::SharedMemory memory, uint8_t* data, uint64_t id, uint64_t header_bytes);

  Fd fd_;
  uint8_t* data_;
  uint64_t size_;
  bool huge_pages_;
  bool size_fixed_;
  uint64_t id_;
  // A shared slab maps its header page too, before data_.
  uint64_t header_bytes_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SLAB_H_
