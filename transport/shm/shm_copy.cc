#include "unipool/shm/shm_copy.h"

#include <algorithm>
#include <cstring>

#include "unipool/common/checksum.h"
#include "unipool/platform/memory.h"

// XXH3 compiled in for AVX2 in this file only (Debian's libxxhash is built
// for the x86-64 baseline, SSE2): the same function, twice as fast, used
// only when the CPU has AVX2. XXH3's result does not depend on the vector
// width.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2")
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#define UNIPOOL_HAVE_AVX2_PATH 1
#include <immintrin.h>
#include <xxhash.h>
#endif

namespace unipool {
namespace {

// Pieces small enough to stay in the core's cache between the copy and the
// hash, so the hash does not read memory a second time.
constexpr size_t kPiece = 128 << 10;
static_assert(kPiece % 128 == 0);

#if UNIPOOL_HAVE_AVX2_PATH
// glibc's memcpy moves large blocks with `rep movsb`, which on AMD Zen runs
// at a fifth of its speed when the destination lies a little (1..63 bytes)
// after the source modulo 4 KiB: measured here 2.7 against 13 GB/s for
// 256 KiB, exactly the case of a page-aligned slab page copied into a
// malloc'd buffer (16 bytes past a page). Plain AVX2 loads and stores have
// no slow case (11.6..14.4 GB/s at every alignment).
void CopyAvx2(uint8_t* to, const uint8_t* from, size_t n) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i + 32));
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i + 64));
    __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from + i + 96));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + i), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + i + 32), b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + i + 64), c);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + i + 96), d);
  }
  std::memcpy(to + i, from + i, n - i);
}

uint64_t CopyAndHashAvx2(uint8_t* to, const uint8_t* from, size_t n) {
  if (n <= kPiece) {
    CopyAvx2(to, from, n);
    return XXH3_64bits(to, n);
  }
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_64bits_reset(&state);
  for (size_t done = 0; done < n; done += kPiece) {
    size_t piece = std::min(kPiece, n - done);
    CopyAvx2(to + done, from + done, piece);
    XXH3_64bits_update(&state, to + done, piece);
  }
  return XXH3_64bits_digest(&state);
}
#pragma GCC pop_options

bool HasAvx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}
#else
bool HasAvx2() { return false; }
void CopyAvx2(uint8_t*, const uint8_t*, size_t) {}
uint64_t CopyAndHashAvx2(uint8_t*, const uint8_t*, size_t) { return 0; }
#endif

}  // namespace

// The node faults its slab in, but only into its own page tables: each
// client maps the slab anew, and where the slab has no huge pages (no
// reserved hugetlb pages, shmem THP off, as on most Linux installs) its
// first write into each 4 KiB page takes a page fault. A first read takes
// one per 16 pages instead: the kernel's fault-around (64 KiB) maps the
// neighbouring pages of the file that are already in memory, writable in a
// shared writable mapping. Measured here, 32 MiB written into pages this
// process had not touched: 19-70 ms with one fault per page, 6-26 ms after
// these reads, 3-20 ms when already mapped (the machine was loaded). On
// mapped pages the reads cost one load per 4 KiB, a line the copy's store
// then finds in cache.
void MapForWriting(const uint8_t* to, size_t n) {
  const size_t page = platform::PageSize();
  for (size_t at = 0; at < n; at += page) {
    (void)*reinterpret_cast<const volatile uint8_t*>(to + at);  // volatile: the load stays
  }
}

void CopyPage(uint8_t* to, const uint8_t* from, size_t n) {
  if (HasAvx2() && n >= 4096) {
    CopyAvx2(to, from, n);
  } else {
    std::memcpy(to, from, n);
  }
}

uint64_t CopyAndHash(uint8_t* to, const uint8_t* from, size_t n) {
  if (HasAvx2()) return CopyAndHashAvx2(to, from, n);
  if (n <= kPiece) {
    std::memcpy(to, from, n);
    return Checksum({to, n});
  }
  ChecksumBuilder hash;
  for (size_t done = 0; done < n; done += kPiece) {
    size_t piece = std::min(kPiece, n - done);
    std::memcpy(to + done, from + done, piece);
    hash.Update({to + done, piece});
  }
  return hash.Finish();
}

bool CopyAndCheck(std::span<uint8_t> into, const uint8_t* from, uint64_t checksum) {
  return CopyAndHash(into.data(), from, into.size()) == checksum;
}

}  // namespace unipool
