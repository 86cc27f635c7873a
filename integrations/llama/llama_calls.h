// The few llama.cpp calls the cache and the program share: decoding a run
// of tokens into a sequence and saving a sequence's state.
#ifndef UNIPOOL_INTEGRATIONS_LLAMA_LLAMA_CALLS_H_
#define UNIPOOL_INTEGRATIONS_LLAMA_LLAMA_CALLS_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "llama.h"
#include "page_buffer.h"

namespace unipool::llama {

// Decodes `tokens` into `seq` at positions first_pos.., in batches of at
// most `batch` tokens (the same split gives the same numbers), with logits
// for the last token only. Internal on llama_decode's failure.
absl::Status DecodeTokens(llama_context* ctx, llama_seq_id seq, std::span<const llama_token> tokens,
                          llama_pos first_pos, int batch);

// The sequence's state (llama_state_seq_get_data), in a buffer whose pages
// are mapped before llama.cpp writes them (page_buffer.h); empty when
// llama.cpp cannot save it. ResourceExhausted when there is no memory.
absl::StatusOr<PageBuffer> SaveSequence(llama_context* ctx, llama_seq_id seq);

}  // namespace unipool::llama

#endif  // UNIPOOL_INTEGRATIONS_LLAMA_LLAMA_CALLS_H_
