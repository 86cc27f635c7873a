// unipool as llama.cpp's prompt cache: the KV of a prompt's leading tokens,
// cut into blocks of `block_tokens` and kept in the pool, so that another
// process (or machine) starting with the same tokens restores them instead
// of computing them.
//
//   auto cache = unipool::llama::PrefixCache::Create(client, ctx, options);
//   size_t restored = (*cache)->Restore(ctx, 0, tokens);  // seq 0 holds 0..restored
//   ... decode tokens[restored..] at positions restored.. ...
//   (*cache)->Store(ctx, 0, tokens);                       // share what was computed
//
// Block i of a prompt is keyed by a hash chain over the tokens of blocks
// 0..i and a fingerprint of everything that makes KV incompatible (the model
// file, the KV cache types and layout, flash attention, RoPE settings, the
// block size and a tenant salt), so another configuration never restores
// these blocks. K is stored after RoPE: a block is valid only at its original
// positions, which the chain guarantees.
//
// The blocks are cut from and reassembled into llama.cpp's own sequence
// state (llama_state_seq_get_data / set_data), whose layout is not a
// documented interface. Create() probes it and refuses (FailedPrecondition,
// naming the llama.cpp version) a layout this code does not understand: the
// engine then computes everything. A block that fails its checksum or does
// not fit this layout ends the restored prefix there; a wrong state is never
// restored. See docs/llama.md (the pinned llama.cpp and how to move it).
//
// Thread safety: a PrefixCache is thread-safe (it holds only constants and
// the thread-safe Client); a llama_context is not, so calls on one context
// must not overlap.
#ifndef UNIPOOL_LLAMA_PREFIX_CACHE_H_
#define UNIPOOL_LLAMA_PREFIX_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llama.h"
#include "unipool/client.h"

namespace unipool::llama {

struct PrefixCacheOptions {
  // The GGUF file the model was loaded from. REQUIRED: its size and a hash
  // of its first and last 4 MiB identify the weights in every key.
  std::string model_path;
  // The parameters the context was created with (llama_init_from_model):
  // the KV cache types, flash attention and RoPE/YaRN overrides go into the
  // fingerprint. Default: llama_context_default_params().
  llama_context_params context_params = llama_context_default_params();
  // Tokens per block. Default 16 (vLLM's default). Larger blocks mean fewer
  // objects and round trips, but a prompt shares only whole blocks.
  int block_tokens = 16;
  // Mixed into every key (as vLLM's cache_salt): engines with different
  // salts never share blocks. Default empty.
  std::string tenant_salt;
  // The first part of every key. Default "llama/".
  std::string key_prefix = "llama/";
  // The sequence the layout probe decodes two tokens into and removes them
  // from. It must be empty when Create() runs. Default 0.
  llama_seq_id probe_seq = 0;
};

// What one Restore or Store did.
struct PrefixCacheStats {
  size_t tokens_restored = 0;  // Restore: tokens now in the sequence
  size_t blocks_found = 0;     // Restore: leading sound blocks the pool had
  // Restore: 1 when the prefix ended at a block that was present but failed
  // its checksum or did not fit; that block is removed from the pool, so
  // that the next Store puts a sound one.
  size_t blocks_rejected = 0;
  size_t blocks_put = 0;  // Store: new blocks put
  uint64_t bytes = 0;     // block bytes read (Restore) or put (Store)
};

class PrefixCache {
 public:
  // Probes the state layout of `ctx` (decodes two tokens into
  // options.probe_seq, saves and restores them, then removes them).
  // FailedPrecondition, with one line naming the llama.cpp version, when the
  // layout is not one this code reads; InvalidArgument for bad options;
  // NotFound when the model file cannot be read. `client` must outlive the
  // cache.
  static absl::StatusOr<std::unique_ptr<PrefixCache>> Create(Client& client, llama_context* ctx,
                                                             const PrefixCacheOptions& options);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // Restores into the (empty) sequence `seq` the KV of the longest run of
  // leading blocks of `tokens` that the pool holds, read with one GetPrefix,
  // at positions 0..n-1, and returns n (a multiple of block_tokens, at most
  // tokens.size() - 1 so that the engine computes the last token's logits).
  // 0 and an empty sequence when nothing usable is cached or the pool cannot
  // be reached: the engine then computes, as without a cache.
  size_t Restore(llama_context* ctx, llama_seq_id seq, std::span<const llama_token> tokens,
                 PrefixCacheStats* stats = nullptr);

  // Puts the full blocks of `tokens` (held by `seq` at positions 0..) that
  // the pool does not hold yet. A block another engine put first is not an
  // error. Errors only when the state cannot be read or the pool refuses.
  absl::Status Store(llama_context* ctx, llama_seq_id seq, std::span<const llama_token> tokens,
                     PrefixCacheStats* stats = nullptr);

  // The keys of the full blocks of `tokens`, in order.
  std::vector<std::string> BlockKeys(std::span<const llama_token> tokens) const;
  // KV bytes per token in this context's layout.
  size_t BytesPerToken() const;

 private:
  struct Impl;
  explicit PrefixCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace unipool::llama

#endif  // UNIPOOL_LLAMA_PREFIX_CACHE_H_
