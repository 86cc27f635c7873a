#include "unipool/common/checksum.h"

#include <xxhash.h>

namespace unipool {
namespace checksum_internal {
// checksum_avx2.cc: the same functions built for AVX2.
bool HasAvx2();
uint64_t HashAvx2(const void* data, size_t size);
void ResetAvx2(void* state);
void UpdateAvx2(void* state, const void* data, size_t size);
uint64_t DigestAvx2(const void* state);
}  // namespace checksum_internal

using checksum_internal::HasAvx2;

uint64_t Checksum(std::span<const uint8_t> bytes) {
  if (HasAvx2()) return checksum_internal::HashAvx2(bytes.data(), bytes.size());
  return XXH3_64bits(bytes.data(), bytes.size());
}

// The state is libxxhash's XXH3_state_t (same layout for both builds); one
// build is used for its whole life.
ChecksumBuilder::ChecksumBuilder() : state_(XXH3_createState()) {
  if (HasAvx2()) {
    checksum_internal::ResetAvx2(state_);
  } else {
    XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
  }
}
ChecksumBuilder::~ChecksumBuilder() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void ChecksumBuilder::Update(std::span<const uint8_t> bytes) {
  if (HasAvx2()) {
    checksum_internal::UpdateAvx2(state_, bytes.data(), bytes.size());
  } else {
    XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), bytes.data(), bytes.size());
  }
}
uint64_t ChecksumBuilder::Finish() const {
  if (HasAvx2()) return checksum_internal::DigestAvx2(state_);
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_));
}

}  // namespace unipool
