// The value stored under a block's key: a 32-byte header, then the payload
// (state_layout.h). The header's checksum covers the key and the payload,
// so a block put under another key, cut short, or changed after it was
// sealed is refused (the pool's own checksum only covers what was put).
//
//   u32 magic "UPLB", u32 version 1, u32 tokens, u32 0,
//   u64 payload bytes, u64 XXH3-64(payload, seed XXH3-64(key))
#ifndef UNIPOOL_INTEGRATIONS_LLAMA_BLOCK_FORMAT_H_
#define UNIPOOL_INTEGRATIONS_LLAMA_BLOCK_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"

namespace unipool::llama {

inline constexpr size_t kBlockHeaderBytes = 32;

// Writes the header into value[0, kBlockHeaderBytes) for the payload that
// follows it in `value`.
void SealBlock(std::string_view key, uint32_t tokens, std::span<uint8_t> value);

// The payload of `value` when its header, size and checksum hold for `key`,
// `tokens` and `payload_bytes`; DataLoss otherwise.
absl::StatusOr<std::span<const uint8_t>> OpenBlock(std::string_view key, uint32_t tokens,
                                                   size_t payload_bytes,
                                                   std::span<const uint8_t> value);

}  // namespace unipool::llama

#endif  // UNIPOOL_INTEGRATIONS_LLAMA_BLOCK_FORMAT_H_
