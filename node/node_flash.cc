#include "unipool/node/node_flash.h"

#include <algorithm>

#include "unipool/common/status_macros.h"
#include "unipool/flash/record.h"

namespace unipool {

uint64_t NodeFlash::SegmentBytesFor(uint64_t size) {
  constexpr uint64_t kMinSegment = 4ull << 20;
  constexpr uint64_t kMaxSegment = 256ull << 20;
  static_assert(3 * kMinSegment <= kMinSize, "the smallest flash holds 3 segments");
  uint64_t segment = std::clamp(size / 16, kMinSegment, kMaxSegment);
  return segment / flash::kRecordAlignment * flash::kRecordAlignment;
}

absl::StatusOr<std::unique_ptr<NodeFlash>> NodeFlash::Open(const std::string& dir, uint64_t size,
                                                           const Slab* slab) {
  flash::FlashOptions options;
  options.dir = dir;
  options.capacity = size;
  options.segment_bytes = SegmentBytesFor(size);
  ASSIGN_OR_RETURN(std::unique_ptr<flash::FlashStore> store,
                   flash::FlashStore::Open(std::move(options)));
  return std::unique_ptr<NodeFlash>(new NodeFlash(std::move(store), slab));
}

absl::Status NodeFlash::Demote(std::string_view key, uint64_t version, uint64_t offset,
                               uint64_t length) {
  ASSIGN_OR_RETURN(std::span<uint8_t> range, slab_->Range(offset, length));
  return store_->Demote(key, version, range);
}

absl::StatusOr<size_t> NodeFlash::Promote(std::string_view key, uint64_t version, uint64_t offset,
                                          uint64_t length) {
  ASSIGN_OR_RETURN(std::span<uint8_t> range, slab_->Range(offset, length));
  return store_->Read(key, version, range, flash::ReadFor::kPromotion);
}

}  // namespace unipool
