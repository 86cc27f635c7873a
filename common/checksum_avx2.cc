// XXH3-64 compiled for AVX2 (Debian's libxxhash is built for the x86-64
// baseline, SSE2, and hashes at about half the speed). Used by checksum.cc
// only when the CPU has AVX2; XXH3's result does not depend on the vector
// width, so both give the same checksums.
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__)
#pragma GCC target("avx2")
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <immintrin.h>  // xxhash.h only includes it when __AVX2__ is set
#include <xxhash.h>

namespace unipool::checksum_internal {

bool HasAvx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}
uint64_t HashAvx2(const void* data, size_t size) { return XXH3_64bits(data, size); }
void ResetAvx2(void* state) { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state)); }
void UpdateAvx2(void* state, const void* data, size_t size) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
}
uint64_t DigestAvx2(const void* state) {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state));
}

}  // namespace unipool::checksum_internal
#else
namespace unipool::checksum_internal {
bool HasAvx2() { return false; }
uint64_t HashAvx2(const void*, size_t) { return 0; }
void ResetAvx2(void*) {}
void UpdateAvx2(void*, const void*, size_t) {}
uint64_t DigestAvx2(const void*) { return 0; }
}  // namespace unipool::checksum_internal
#endif
