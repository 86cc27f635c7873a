// The node's flash tier as the node service will use it (issue 25): pages
// named by key and version, demoted from a range of the slab and read back
// into a buffer or a slab range, each verified by its checksum. The store
// itself is unipool/flash/flash_store.h; this adds the slab's bounds and the
// sizing from --ssd-size.
//
// Thread safety: thread-safe, as FlashStore.
#ifndef UNIPOOL_NODE_NODE_FLASH_H_
#define UNIPOOL_NODE_NODE_FLASH_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "unipool/common/slab.h"
#include "unipool/flash/flash_store.h"

namespace unipool {

class NodeFlash {
 public:
  // The smallest --ssd-size: 3 segments of the smallest segment.
  static constexpr uint64_t kMinSize = 64ull << 20;
  // The segment size for `size` bytes of flash: a sixteenth of it, between
  // 4 MiB and 256 MiB (so a page of up to 4 MiB always fits).
  static uint64_t SegmentBytesFor(uint64_t size);

  // Opens the store in `dir` (created when missing) and rebuilds its index.
  // `slab` must outlive this object.
  static absl::StatusOr<std::unique_ptr<NodeFlash>> Open(const std::string& dir, uint64_t size,
                                                         const Slab* slab);

  // Queues slab[offset, +length) to be written as `key` at `version`
  // (FlashStore::Demote); OutOfRange when the range is not in the slab.
  absl::Status Demote(std::string_view key, uint64_t version, uint64_t offset, uint64_t length);
  // Reads `key` at `version` into slab[offset, +length) for a promotion back
  // to memory; the errors of FlashStore::Read, or OutOfRange for a range
  // outside the slab.
  absl::StatusOr<size_t> Promote(std::string_view key, uint64_t version, uint64_t offset,
                                 uint64_t length);
  // Reads `key` at `version` into `dest` to serve a get (FlashStore::Read).
  absl::StatusOr<size_t> Read(std::string_view key, uint64_t version, std::span<uint8_t> dest) {
    return store_->Read(key, version, dest, flash::ReadFor::kServe);
  }
  absl::Status Drop(std::string_view key) { return store_->Drop(key); }
  // The pages to announce to the directory after a restart.
  std::vector<flash::FlashEntry> List() const { return store_->List(); }
  flash::FlashCounters counters() const { return store_->counters(); }
  flash::FlashStore& store() { return *store_; }

 private:
  NodeFlash(std::unique_ptr<flash::FlashStore> store, const Slab* slab)
      : store_(std::move(store)), slab_(slab) {}

  std::unique_ptr<flash::FlashStore> store_;
  const Slab* slab_;
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_NODE_FLASH_H_
