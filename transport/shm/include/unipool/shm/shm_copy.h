// The same-host path's data mover: copies between a mapped slab and the
// caller's memory, and hashes what it copied while it is still in cache.
// AVX2 where the CPU has it (chosen at run time), portable code elsewhere;
// both give the same bytes and the same XXH3-64 as unipool/common/checksum.h.
#ifndef UNIPOOL_SHM_SHM_COPY_H_
#define UNIPOOL_SHM_SHM_COPY_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace unipool {

// Maps [to, to + n) of a mapped slab into this process's page tables before
// it is written, reading one byte per page (see shm_copy.cc for why a read
// first is cheaper than letting the copy fault). The bytes are unchanged.
void MapForWriting(const uint8_t* to, size_t n);

// memcpy without glibc's `rep movsb` slow case (see shm_copy.cc).
void CopyPage(uint8_t* to, const uint8_t* from, size_t n);

// Copies n bytes and returns their XXH3-64, hashing each piece of the
// destination just after copying it (while it is in cache).
uint64_t CopyAndHash(uint8_t* to, const uint8_t* from, size_t n);

// Copies `from` into `into` and returns whether the copy's XXH3-64 is
// `checksum` (hashing the destination: what the caller gets is what counts).
bool CopyAndCheck(std::span<uint8_t> into, const uint8_t* from, uint64_t checksum);

}  // namespace unipool

#endif  // UNIPOOL_SHM_SHM_COPY_H_
