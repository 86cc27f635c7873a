// llama.cpp's sequence state (llama_state_seq_get_data), as this code reads
// it, and prompt blocks cut from it and put back together. The format is
// llama.cpp's own, undocumented and version-specific (this is the one of
// LLAMA_STATE_SEQ_VERSION 3, llama.cpp de3ff815); docs/llama.md describes it:
//
//   u32 magic 0xaf143cd8, i32 seq_id, u32 n_stream,
//   per stream: u32 cell_count, then (if > 0)
//     per cell:  i32 pos, u32 n_seq_id (1), i32 seq_id
//     u32 v_trans, u32 n_layer
//     per layer: i32 k_type, u64 k_row_bytes, cell_count K rows
//     per layer, V not transposed: i32 v_type, u64 v_row_bytes, cell_count rows
//     per layer, V transposed:     i32 v_type, u32 v_elem_bytes, u32 v_width,
//                                  v_width rows of cell_count elements
//
// A block's payload is the KV of `n` consecutive positions: every layer's K
// rows, then every layer's V (rows, or for transposed V, v_width rows of n
// elements). Parsing checks every length against the state's size, so a
// layout that differs in any field count fails rather than misreads.
#ifndef UNIPOOL_INTEGRATIONS_LLAMA_STATE_LAYOUT_H_
#define UNIPOOL_INTEGRATIONS_LLAMA_STATE_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace unipool::llama {

struct LayerLayout {
  int32_t k_type = 0;
  uint64_t k_row = 0;  // bytes of one token's K
  int32_t v_type = 0;
  uint64_t v_row = 0;    // bytes of one token's V (not transposed)
  uint32_t v_elem = 0;   // transposed V: bytes of one element
  uint32_t v_width = 0;  // transposed V: elements per token
  bool operator==(const LayerLayout&) const = default;
};

struct StateLayout {
  uint32_t n_stream = 0;
  bool v_trans = false;
  std::vector<LayerLayout> layers;

  bool operator==(const StateLayout&) const = default;
  // KV bytes of one token over every layer.
  size_t BytesPerToken() const;
  // A stable text of every field, hashed into the keys' fingerprint.
  std::string Describe() const;
};

// One sequence's state: where each cell's K and V start.
struct ParsedState {
  StateLayout layout;
  uint32_t cells = 0;              // of the one non-empty stream
  std::vector<int32_t> positions;  // per cell
  std::vector<size_t> k_offset;    // per layer: the first cell's K row
  std::vector<size_t> v_offset;    // per layer: the first cell's V (row or element)
};

// FailedPrecondition, naming the first field that does not match, when
// `state` is not a state of sequence `seq` in the format above.
absl::StatusOr<ParsedState> ParseState(std::span<const uint8_t> state, int32_t seq);

// Which cell holds position `pos`; -1 when none.
int64_t CellOf(const ParsedState& parsed, int32_t pos);

// Bytes of the payload of `n` positions.
size_t PayloadBytes(const StateLayout& layout, uint32_t n);

// Writes into `out` (PayloadBytes) the payload of positions [first,
// first + n). FailedPrecondition when a position is not in the state.
absl::Status CutBlock(const ParsedState& parsed, std::span<const uint8_t> state, int32_t first,
                      uint32_t n, std::span<uint8_t> out);

// Bytes of the state of `blocks` blocks of `block_tokens` positions.
size_t StateBytes(const StateLayout& layout, size_t blocks, uint32_t block_tokens);

// Writes into `state` the state of sequence `seq` holding positions 0..
// from `payloads` (each of `block_tokens` positions), in order, as
// llama_state_seq_set_data reads. The caller gives the buffer so that a
// large state goes into memory that is already mapped (page_buffer.h).
// InvalidArgument unless state.size() == StateBytes(layout,
// payloads.size(), block_tokens).
absl::Status AssembleState(const StateLayout& layout, int32_t seq,
                           std::span<const std::span<const uint8_t>> payloads,
                           uint32_t block_tokens, std::span<uint8_t> state);

}  // namespace unipool::llama

#endif  // UNIPOOL_INTEGRATIONS_LLAMA_STATE_LAYOUT_H_
