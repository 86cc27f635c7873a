// The pool keys of a prompt's blocks: a hash chain over the tokens, under a
// fingerprint of everything that makes KV incompatible.
#ifndef UNIPOOL_INTEGRATIONS_LLAMA_BLOCK_KEYS_H_
#define UNIPOOL_INTEGRATIONS_LLAMA_BLOCK_KEYS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace unipool::llama {

// The model file's identity: its size and a hash of its first and last
// 4 MiB (the GGUF header, metadata and the ends of the weights), read in
// milliseconds however large the file. NotFound when it cannot be read.
absl::StatusOr<std::string> ModelFileIdentity(const std::string& path);

// A 128-bit hash of `parts`, in hex (32 characters).
std::string FingerprintOf(std::span<const std::string> parts);

// Key of block i: PREFIX FINGERPRINT "/" H_i, where H_i = hash(H_{i-1},
// tokens of block i) and H_-1 is the fingerprint. Only full blocks.
std::vector<std::string> ChainKeys(std::string_view prefix, std::string_view fingerprint,
                                   std::span<const int32_t> tokens, size_t block_tokens);

}  // namespace unipool::llama

#endif  // UNIPOOL_INTEGRATIONS_LLAMA_BLOCK_KEYS_H_
