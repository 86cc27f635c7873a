// A large byte buffer whose pages are in this process's page tables before
// it is used. A restore or store of a 2,048-token prompt moves 64 MiB through
// buffers made for that one call; a fresh std::vector of that size takes a
// page fault per 4 KiB page the first time each is written (16,384 faults),
// and on a virtual machine those cost more than the copies themselves
// (measured here: 1 s to zero a new 64 MiB vector, 15 ms to memcpy 64 MiB
// between touched buffers; bench/results/llama.md). A PageBuffer asks for
// transparent huge pages and faults its pages in with one system call
// (Linux; one write per page elsewhere): 5-16 ms for the same 64 MiB.
#ifndef UNIPOOL_INTEGRATIONS_LLAMA_PAGE_BUFFER_H_
#define UNIPOOL_INTEGRATIONS_LLAMA_PAGE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "absl/status/statusor.h"
#include "unipool/platform/memory.h"

namespace unipool::llama {

class PageBuffer {
 public:
  // `bytes` zeroed bytes, every page mapped. ResourceExhausted when the
  // memory cannot be had.
  static absl::StatusOr<PageBuffer> Allocate(size_t bytes);
  PageBuffer() = default;
  PageBuffer(PageBuffer&& other) noexcept
      : pages_(std::move(other.pages_)), size_(std::exchange(other.size_, 0)) {}
  PageBuffer& operator=(PageBuffer&& other) noexcept {
    pages_ = std::move(other.pages_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  uint8_t* data() const { return pages_.get(); }
  size_t size() const { return size_; }
  std::span<uint8_t> span() const { return {pages_.get(), size_}; }
  // Uses only the first `bytes` (at most size()); the memory stays mapped.
  void Truncate(size_t bytes) { size_ = bytes < size_ ? bytes : size_; }

 private:
  platform::AnonymousPages pages_;
  size_t size_ = 0;
};

}  // namespace unipool::llama

#endif  // UNIPOOL_INTEGRATIONS_LLAMA_PAGE_BUFFER_H_
