// A node's slab: one contiguous mapping of memory that the pool exports.
// Backed by a memfd so that a later same-host path can map it in another
// process; huge pages when the system has them reserved.
//
// Thread safety: the mapping itself is immutable after Create; concurrent
// reads and writes of its bytes are the callers' business.
#ifndef UNIPOOL_STORE_SLAB_H_
#define UNIPOOL_STORE_SLAB_H_

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"
#include "common/socket.h"

namespace unipool {

class Slab {
 public:
  // Maps `size` bytes (rounded up to the page size in use). Tries explicit
  // huge pages (MFD_HUGETLB) first, then normal pages with transparent huge
  // pages advised. ResourceExhausted when the memory cannot be had.
  static absl::StatusOr<std::unique_ptr<Slab>> Create(uint64_t size);
  ~Slab();
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  bool huge_pages() const { return huge_pages_; }
  // Random identity of this memory's lifetime: a restarted node has a new
  // one, so the directory knows its old objects are gone.
  uint64_t id() const { return id_; }
  int fd() const { return fd_.get(); }

  // The bytes [offset, offset+length) if they lie inside the slab, else
  // OutOfRange naming the range.
  absl::StatusOr<std::span<uint8_t>> Range(uint64_t offset, uint64_t length) const;

 private:
  Slab(Fd fd, uint8_t* data, uint64_t size, bool huge_pages, uint64_t id)
      : fd_(std::move(fd)), data_(data), size_(size), huge_pages_(huge_pages), id_(id) {}

  Fd fd_;
  uint8_t* data_;
  uint64_t size_;
  bool huge_pages_;
  uint64_t id_;
};

}  // namespace unipool

#endif  // UNIPOOL_STORE_SLAB_H_
