// Page checksums: XXH3-64 (xxhash), fast enough to run on every put and get
// at memory bandwidth.
#ifndef UNIPOOL_COMMON_CHECKSUM_H_
#define UNIPOOL_COMMON_CHECKSUM_H_

#include <cstdint>
#include <span>

namespace unipool {

uint64_t Checksum(std::span<const uint8_t> bytes);

// Streaming form, for a page assembled from pieces.
class ChecksumBuilder {
 public:
  ChecksumBuilder();
  ~ChecksumBuilder();
  ChecksumBuilder(const ChecksumBuilder&) = delete;
  ChecksumBuilder& operator=(const ChecksumBuilder&) = delete;
  void Update(std::span<const uint8_t> bytes);
  uint64_t Finish() const;

 private:
  void* state_;  // XXH3_state_t, kept opaque so xxhash.h stays private.
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_CHECKSUM_H_
