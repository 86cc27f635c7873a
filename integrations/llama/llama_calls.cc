#include "llama_calls.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace unipool::llama {

absl::Status DecodeTokens(llama_context* ctx, llama_seq_id seq, std::span<const llama_token> tokens,
                          llama_pos first_pos, int batch) {
  const int per_batch = std::max(1, batch);
  llama_batch b = llama_batch_init(per_batch, 0, 1);
  absl::Status status;
  for (size_t at = 0; at < tokens.size() && status.ok(); at += per_batch) {
    const int n = static_cast<int>(std::min<size_t>(per_batch, tokens.size() - at));
    b.n_tokens = n;
    for (int i = 0; i < n; ++i) {
      b.token[i] = tokens[at + i];
      b.pos[i] = first_pos + static_cast<llama_pos>(at + i);
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = seq;
      b.logits[i] = at + i + 1 == tokens.size();
    }
    if (int32_t rc = llama_decode(ctx, b); rc != 0) {
      status = absl::InternalError(absl::StrFormat("llama_decode failed (%d) at token %d", rc,
                                                   first_pos + static_cast<int>(at)));
    }
  }
  llama_batch_free(b);
  return status;
}

absl::StatusOr<PageBuffer> SaveSequence(llama_context* ctx, llama_seq_id seq) {
  absl::StatusOr<PageBuffer> state = PageBuffer::Allocate(llama_state_seq_get_size(ctx, seq));
  if (!state.ok() || state->size() == 0) return state;
  state->Truncate(llama_state_seq_get_data(ctx, state->data(), state->size(), seq));
  return state;
}

}  // namespace unipool::llama
