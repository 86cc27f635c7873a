// The layout probe: checks, before any block is trusted, that this
// llama.cpp writes sequence states as state_layout.h reads them.
#ifndef UNIPOOL_INTEGRATIONS_LLAMA_LAYOUT_PROBE_H_
#define UNIPOOL_INTEGRATIONS_LLAMA_LAYOUT_PROBE_H_

#include "absl/status/statusor.h"
#include "llama.h"
#include "state_layout.h"

namespace unipool::llama {

// Decodes two tokens into the empty sequence `seq`, parses its state, cuts
// the first token's block, restores it alone and checks that llama.cpp
// saves exactly that back; then empties the sequence. FailedPrecondition,
// one line naming the llama.cpp version, when any step disagrees.
absl::StatusOr<StateLayout> ProbeLayout(llama_context* ctx, llama_seq_id seq);

}  // namespace unipool::llama

#endif  // UNIPOOL_INTEGRATIONS_LLAMA_LAYOUT_PROBE_H_
