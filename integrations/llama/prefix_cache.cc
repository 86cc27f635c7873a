#include "unipool/llama/prefix_cache.h"

#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block_format.h"
#include "block_keys.h"
#include "layout_probe.h"
#include "llama_calls.h"
#include "page_buffer.h"
#include "state_layout.h"

namespace unipool::llama {
namespace {

constexpr int kMaxBlockTokens = 4096;

// Everything about the engine's configuration that changes the KV it
// computes or how it is laid out.
std::vector<std::string> FingerprintParts(const std::string& model, const StateLayout& layout,
                                          const PrefixCacheOptions& o) {
  const llama_context_params& p = o.context_params;
  return {"unipool-llama-1",
          model,
          layout.Describe(),
          absl::StrFormat("types k=%d v=%d flash_attn=%d", p.type_k, p.type_v, p.flash_attn_type),
          absl::StrFormat("rope scaling=%d base=%a scale=%a", p.rope_scaling_type, p.rope_freq_base,
                          p.rope_freq_scale),
          absl::StrFormat("yarn ext=%a attn=%a fast=%a slow=%a orig=%u", p.yarn_ext_factor,
                          p.yarn_attn_factor, p.yarn_beta_fast, p.yarn_beta_slow, p.yarn_orig_ctx),
          absl::StrCat("block ", o.block_tokens),
          o.tenant_salt};
}

std::vector<std::string_view> Views(const std::vector<std::string>& keys, size_t n) {
  return std::vector<std::string_view>(keys.begin(), keys.begin() + n);
}

}  // namespace

struct PrefixCache::Impl {
  Client& client;
  PrefixCacheOptions options;
  StateLayout layout;
  std::string fingerprint;
  size_t payload_bytes = 0;  // of one block
  size_t value_bytes() const { return kBlockHeaderBytes + payload_bytes; }
  uint32_t block() const { return static_cast<uint32_t>(options.block_tokens); }

  // Reads the leading present blocks into `values`, allocated here (one
  // value_bytes() per block); returns how many. `unfit` says whether the
  // block after them is present but larger than this layout's blocks.
  size_t ReadPrefix(const std::vector<std::string>& keys, PageBuffer& values, bool& unfit);
  // How many of the read blocks, from the first, are sound.
  size_t SoundBlocks(const std::vector<std::string>& keys, const PageBuffer& values, size_t n,
                     std::vector<std::span<const uint8_t>>& payloads) const;
};

size_t PrefixCache::Impl::ReadPrefix(const std::vector<std::string>& keys, PageBuffer& values,
                                     bool& unfit) {
  unfit = false;
  // The lookup first, so that the buffer is sized (and its pages faulted
  // in) for the blocks present only: a miss costs one directory round trip
  // instead of a buffer for the whole prompt (260 ms for 64 MiB here).
  std::vector<std::string_view> views = Views(keys, keys.size());
  absl::StatusOr<size_t> found = client.LookupPrefix(views);
  if (!found.ok() || *found == 0) return 0;
  views.resize(*found);
  absl::StatusOr<PageBuffer> allocated = PageBuffer::Allocate(*found * value_bytes());
  if (!allocated.ok()) return 0;
  values = std::move(*allocated);
  std::vector<std::span<uint8_t>> buffers;
  for (size_t i = 0; i < views.size(); ++i) {
    buffers.emplace_back(values.data() + i * value_bytes(), value_bytes());
  }
  absl::StatusOr<size_t> n = client.GetPrefix(views, buffers);
  if (n.ok()) return *n;
  if (!absl::IsInvalidArgument(n.status())) return 0;
  // A block larger than this layout's: read the present prefix one by one
  // and end it at the first block that does not fit.
  absl::StatusOr<size_t> present = client.LookupPrefix(views);
  if (!present.ok()) return 0;
  auto got = client.BatchGet(std::span<const std::string_view>(views.data(), *present));
  size_t fit = 0;
  while (fit < got.size() && got[fit].ok() && got[fit]->size() == value_bytes()) {
    std::copy(got[fit]->begin(), got[fit]->end(), buffers[fit].begin());
    ++fit;
  }
  unfit = fit < got.size();
  return fit;
}

size_t PrefixCache::Impl::SoundBlocks(const std::vector<std::string>& keys,
                                      const PageBuffer& values, size_t n,
                                      std::vector<std::span<const uint8_t>>& payloads) const {
  for (size_t i = 0; i < n; ++i) {
    std::span<const uint8_t> value(values.data() + i * value_bytes(), value_bytes());
    auto payload = OpenBlock(keys[i], block(), payload_bytes, value);
    if (!payload.ok()) break;
    payloads.push_back(*payload);
  }
  return payloads.size();
}

PrefixCache::PrefixCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PrefixCache::~PrefixCache() = default;

absl::StatusOr<std::unique_ptr<PrefixCache>> PrefixCache::Create(
    Client& client, llama_context* ctx, const PrefixCacheOptions& options) {
  if (options.block_tokens < 1 || options.block_tokens > kMaxBlockTokens) {
    return absl::InvalidArgumentError(absl::StrFormat("block_tokens must be 1..%d, not %d",
                                                      kMaxBlockTokens, options.block_tokens));
  }
  if (options.model_path.empty()) return absl::InvalidArgumentError("model_path is required");
  absl::StatusOr<std::string> model = ModelFileIdentity(options.model_path);
  if (!model.ok()) return model.status();
  absl::StatusOr<StateLayout> layout = ProbeLayout(ctx, options.probe_seq);
  if (!layout.ok()) return layout.status();
  auto impl = std::unique_ptr<Impl>(new Impl{client, options, *layout, "", 0});
  impl->fingerprint = FingerprintOf(FingerprintParts(*model, *layout, options));
  impl->payload_bytes = PayloadBytes(*layout, impl->block());
  return std::unique_ptr<PrefixCache>(new PrefixCache(std::move(impl)));
}

std::vector<std::string> PrefixCache::BlockKeys(std::span<const llama_token> tokens) const {
  return ChainKeys(impl_->options.key_prefix, impl_->fingerprint, tokens,
                   impl_->options.block_tokens);
}

size_t PrefixCache::BytesPerToken() const { return impl_->layout.BytesPerToken(); }

size_t PrefixCache::Restore(llama_context* ctx, llama_seq_id seq,
                            std::span<const llama_token> tokens, PrefixCacheStats* stats) {
  PrefixCacheStats local;
  PrefixCacheStats& out = stats != nullptr ? *stats : local;
  out = {};
  // The last token is always computed: the engine needs its logits.
  if (tokens.size() < 2) return 0;
  const size_t usable = (tokens.size() - 1) / impl_->block();
  std::vector<std::string> keys = BlockKeys(tokens.first(usable * impl_->block()));
  if (keys.empty()) return 0;
  // Both buffers mapped before use (page_buffer.h): the blocks as read,
  // and the state they are reassembled into.
  PageBuffer values;
  bool unfit = false;
  size_t read = impl_->ReadPrefix(keys, values, unfit);
  std::vector<std::span<const uint8_t>> payloads;
  size_t sound = impl_->SoundBlocks(keys, values, read, payloads);
  out.blocks_found = sound;
  if (sound < read || unfit) {
    // Under this fingerprint's key the block is wrong for every engine:
    // removed (best effort) so that the next Store puts a sound one.
    out.blocks_rejected = 1;
    impl_->client.Remove(keys[sound]).IgnoreError();
  }
  if (sound == 0) return 0;
  absl::StatusOr<PageBuffer> state =
      PageBuffer::Allocate(StateBytes(impl_->layout, sound, impl_->block()));
  if (!state.ok() ||
      !AssembleState(impl_->layout, seq, payloads, impl_->block(), state->span()).ok()) {
    return 0;
  }
  if (llama_state_seq_set_data(ctx, state->data(), state->size(), seq) != state->size()) {
    llama_memory_seq_rm(llama_get_memory(ctx), seq, -1, -1);
    return 0;
  }
  out.bytes = sound * impl_->value_bytes();
  out.tokens_restored = sound * impl_->block();
  return out.tokens_restored;
}

absl::Status PrefixCache::Store(llama_context* ctx, llama_seq_id seq,
                                std::span<const llama_token> tokens, PrefixCacheStats* stats) {
  PrefixCacheStats local;
  PrefixCacheStats& out = stats != nullptr ? *stats : local;
  out = {};
  std::vector<std::string> keys = BlockKeys(tokens);
  std::vector<std::string_view> views = Views(keys, keys.size());
  absl::StatusOr<size_t> present = impl_->client.LookupPrefix(views);
  if (!present.ok()) return present.status();
  if (*present == keys.size()) return absl::OkStatus();
  absl::StatusOr<PageBuffer> state = SaveSequence(ctx, seq);
  if (!state.ok()) return state.status();
  absl::StatusOr<ParsedState> parsed = ParseState(state->span(), seq);
  if (!parsed.ok()) return parsed.status();
  if (parsed->layout != impl_->layout) {
    return absl::FailedPreconditionError("the sequence's KV layout changed since the probe");
  }
  const size_t todo = keys.size() - *present;
  absl::StatusOr<PageBuffer> values = PageBuffer::Allocate(todo * impl_->value_bytes());
  if (!values.ok()) return values.status();
  std::vector<std::span<const uint8_t>> spans;
  for (size_t i = 0; i < todo; ++i) {
    const size_t b = *present + i;
    std::span<uint8_t> value(values->data() + i * impl_->value_bytes(), impl_->value_bytes());
    absl::Status cut = CutBlock(*parsed, state->span(), static_cast<int32_t>(b * impl_->block()),
                                impl_->block(), value.subspan(kBlockHeaderBytes));
    if (!cut.ok()) return cut;
    SealBlock(keys[b], impl_->block(), value);
    spans.push_back(value);
  }
  auto results = impl_->client.BatchPut(
      std::span<const std::string_view>(views.data() + *present, todo), spans);
  for (const absl::Status& result : results) {
    if (result.ok()) {
      ++out.blocks_put;
      out.bytes += impl_->value_bytes();
    } else if (!absl::IsAlreadyExists(result)) {  // another engine put it first: fine
      return result;
    }
  }
  return absl::OkStatus();
}

}  // namespace unipool::llama
