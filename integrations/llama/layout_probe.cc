#include "layout_probe.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "llama_calls.h"

namespace unipool::llama {
namespace {

absl::Status Refuse(absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "llama.cpp %s (sequence state version %d) saves KV in a layout this unipool does not read "
      "(%s); computing without the pool",
      llama_version(), LLAMA_STATE_SEQ_VERSION, why));
}

// The probe proper, on a sequence holding positions 0 and 1.
absl::StatusOr<StateLayout> CheckRoundTrip(llama_context* ctx, llama_seq_id seq) {
  absl::StatusOr<PageBuffer> state = SaveSequence(ctx, seq);
  if (!state.ok()) return state.status();
  if (state->size() == 0) return Refuse("llama_state_seq_get_data saved nothing");
  absl::StatusOr<ParsedState> parsed = ParseState(state->span(), seq);
  if (!parsed.ok()) return Refuse(parsed.status().message());
  if (parsed->cells != 2 || CellOf(*parsed, 0) < 0 || CellOf(*parsed, 1) < 0) {
    return Refuse("two decoded tokens are not two cells at positions 0 and 1");
  }
  // Restore the first token alone from a block cut out of the state; the
  // state llama.cpp then saves must hold exactly that block.
  std::vector<uint8_t> block(PayloadBytes(parsed->layout, 1));
  if (absl::Status s = CutBlock(*parsed, state->span(), 0, 1, block); !s.ok()) {
    return Refuse(s.message());
  }
  std::span<const uint8_t> payloads[] = {block};
  std::vector<uint8_t> assembled(StateBytes(parsed->layout, 1, 1));
  if (absl::Status s = AssembleState(parsed->layout, seq, payloads, 1, assembled); !s.ok()) {
    return Refuse(s.message());
  }
  if (llama_state_seq_set_data(ctx, assembled.data(), assembled.size(), seq) != assembled.size()) {
    return Refuse("llama_state_seq_set_data refused a reassembled state");
  }
  absl::StatusOr<PageBuffer> again = SaveSequence(ctx, seq);
  if (!again.ok()) return again.status();
  absl::StatusOr<ParsedState> reparsed = ParseState(again->span(), seq);
  if (!reparsed.ok()) return Refuse(reparsed.status().message());
  std::vector<uint8_t> block_again(block.size());
  if (reparsed->cells != 1 || reparsed->layout != parsed->layout ||
      !CutBlock(*reparsed, again->span(), 0, 1, block_again).ok() || block_again != block) {
    return Refuse("a restored block does not save back as the same bytes");
  }
  return parsed->layout;
}

}  // namespace

absl::StatusOr<StateLayout> ProbeLayout(llama_context* ctx, llama_seq_id seq) {
  llama_memory_t memory = llama_get_memory(ctx);
  if (memory == nullptr) return Refuse("the context has no KV cache");
  if (llama_memory_seq_pos_max(memory, seq) >= 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the probe needs sequence %d empty; create the cache first", seq));
  }
  const llama_token probe[] = {0, 0};
  if (absl::Status s = DecodeTokens(ctx, seq, probe, 0, /*batch=*/1); !s.ok()) return s;
  absl::StatusOr<StateLayout> layout = CheckRoundTrip(ctx, seq);
  llama_memory_seq_rm(memory, seq, -1, -1);
  return layout;
}

}  // namespace unipool::llama
