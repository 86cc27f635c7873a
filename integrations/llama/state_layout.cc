#include "state_layout.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace unipool::llama {
namespace {

// The first field of every sequence state (llama-context.cpp's io_magic).
constexpr uint32_t kStateMagic = 0xaf143cd8;
// Sanity bounds: a field beyond them is a format this code does not know.
constexpr uint32_t kMaxStreams = 4096;
constexpr uint32_t kMaxLayers = 4096;
constexpr uint64_t kMaxRowBytes = 64ull << 20;
constexpr uint32_t kMaxElemBytes = 16;
// A cell's metadata: position, sequence count (1), sequence id.
constexpr size_t kCellBytes = 4 + 4 + 4;

absl::Status Unexpected(const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("unexpected sequence state: ", what));
}

// Reads little-endian fields in order; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  template <typename T>
  bool Read(T& value) {
    if (bytes_.size() - at_ < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  // Skips `count` items of `size` bytes; false if they are not all there.
  bool Skip(uint64_t count, uint64_t size) {
    if (size != 0 && count > (bytes_.size() - at_) / size) return false;
    at_ += count * size;
    return true;
  }
  size_t at() const { return at_; }
  bool done() const { return at_ == bytes_.size(); }

 private:
  std::span<const uint8_t> bytes_;
  size_t at_ = 0;
};

// Writes fields in order into a buffer sized for them (StateBytes).
class Writer {
 public:
  explicit Writer(std::span<uint8_t> out) : out_(out) {}
  template <typename T>
  void Put(T value) {
    Append(&value, sizeof(T));
  }
  void Append(const void* data, size_t n) {
    std::memcpy(out_.data() + at_, data, n);
    at_ += n;
  }

 private:
  std::span<uint8_t> out_;
  size_t at_ = 0;
};

// Bytes of the state's fields other than the KV rows and the cells.
size_t HeaderBytes(const StateLayout& layout) {
  // magic, seq_id, n_stream, one cell count per stream, v_trans, n_layer
  size_t bytes = 4 + 4 + 4 + 4 * size_t{layout.n_stream} + 4 + 4;
  // Per layer: K type and row size; V type and row size, or element size
  // and width.
  bytes += layout.layers.size() * ((4 + 8) + (layout.v_trans ? 4 + 4 + 4 : 4 + 8));
  return bytes;
}

absl::Status ParseCells(Reader& in, int32_t seq, ParsedState& out) {
  out.positions.resize(out.cells);
  for (uint32_t i = 0; i < out.cells; ++i) {
    uint32_t n_seq = 0;
    int32_t cell_seq = 0;
    if (!in.Read(out.positions[i]) || !in.Read(n_seq) || !in.Read(cell_seq)) {
      return Unexpected("cell metadata runs past the end");
    }
    if (n_seq != 1) return Unexpected(absl::StrFormat("a cell in %u sequences", n_seq));
    if (cell_seq != seq) return Unexpected(absl::StrFormat("a cell of sequence %d", cell_seq));
  }
  return absl::OkStatus();
}

absl::Status ParseLayers(Reader& in, ParsedState& out) {
  uint32_t v_trans = 0, n_layer = 0;
  if (!in.Read(v_trans) || !in.Read(n_layer)) return Unexpected("no layer header");
  if (v_trans > 1) return Unexpected(absl::StrFormat("v_trans %u", v_trans));
  if (n_layer == 0 || n_layer > kMaxLayers)
    return Unexpected(absl::StrFormat("%u layers", n_layer));
  StateLayout& layout = out.layout;
  layout.v_trans = v_trans == 1;
  layout.layers.assign(n_layer, {});
  out.k_offset.resize(n_layer);
  out.v_offset.resize(n_layer);
  for (uint32_t l = 0; l < n_layer; ++l) {
    LayerLayout& layer = layout.layers[l];
    if (!in.Read(layer.k_type) || !in.Read(layer.k_row)) return Unexpected("a K header is cut");
    if (layer.k_row == 0 || layer.k_row > kMaxRowBytes) return Unexpected("a K row size");
    out.k_offset[l] = in.at();
    if (!in.Skip(out.cells, layer.k_row)) return Unexpected("K rows run past the end");
  }
  for (uint32_t l = 0; l < n_layer; ++l) {
    LayerLayout& layer = layout.layers[l];
    if (!in.Read(layer.v_type)) return Unexpected("a V header is cut");
    if (!layout.v_trans) {
      if (!in.Read(layer.v_row)) return Unexpected("a V header is cut");
      if (layer.v_row == 0 || layer.v_row > kMaxRowBytes) return Unexpected("a V row size");
      out.v_offset[l] = in.at();
      if (!in.Skip(out.cells, layer.v_row)) return Unexpected("V rows run past the end");
      continue;
    }
    if (!in.Read(layer.v_elem) || !in.Read(layer.v_width)) return Unexpected("a V header is cut");
    if (layer.v_elem == 0 || layer.v_elem > kMaxElemBytes || layer.v_width == 0 ||
        layer.v_width > kMaxRowBytes) {
      return Unexpected("a transposed V size");
    }
    out.v_offset[l] = in.at();
    if (!in.Skip(uint64_t{out.cells} * layer.v_width, layer.v_elem)) {
      return Unexpected("V elements run past the end");
    }
  }
  return absl::OkStatus();
}

}  // namespace

size_t StateLayout::BytesPerToken() const { return PayloadBytes(*this, 1); }

std::string StateLayout::Describe() const {
  std::string text = absl::StrFormat("streams=%u v_trans=%d", n_stream, v_trans);
  for (const LayerLayout& l : layers) {
    absl::StrAppendFormat(&text, " [k%d:%u v%d:%u:%u:%u]", l.k_type, l.k_row, l.v_type, l.v_row,
                          l.v_elem, l.v_width);
  }
  return text;
}

absl::StatusOr<ParsedState> ParseState(std::span<const uint8_t> state, int32_t seq) {
  Reader in(state);
  uint32_t magic = 0, n_stream = 0;
  int32_t state_seq = 0;
  if (!in.Read(magic) || magic != kStateMagic) return Unexpected("magic");
  if (!in.Read(state_seq) || state_seq != seq) return Unexpected("sequence id in the header");
  if (!in.Read(n_stream) || n_stream == 0 || n_stream > kMaxStreams) return Unexpected("streams");
  ParsedState out;
  out.layout.n_stream = n_stream;
  bool found = false;
  for (uint32_t s = 0; s < n_stream; ++s) {
    uint32_t cells = 0;
    if (!in.Read(cells)) return Unexpected("a stream's cell count is cut");
    if (cells == 0) continue;
    // One sequence lives in one stream.
    if (found) return Unexpected("a sequence in two streams");
    found = true;
    out.cells = cells;
    if (absl::Status s = ParseCells(in, seq, out); !s.ok()) return s;
    if (absl::Status s = ParseLayers(in, out); !s.ok()) return s;
  }
  if (!in.done()) {
    return Unexpected(absl::StrFormat("%u bytes left over", state.size() - in.at()));
  }
  return out;
}

int64_t CellOf(const ParsedState& parsed, int32_t pos) {
  // Cells are usually in position order; look there first.
  if (pos >= 0 && static_cast<size_t>(pos) < parsed.positions.size() &&
      parsed.positions[pos] == pos) {
    return pos;
  }
  for (size_t i = 0; i < parsed.positions.size(); ++i) {
    if (parsed.positions[i] == pos) return static_cast<int64_t>(i);
  }
  return -1;
}

size_t PayloadBytes(const StateLayout& layout, uint32_t n) {
  size_t bytes = 0;
  for (const LayerLayout& l : layout.layers) {
    bytes += n * (l.k_row + (layout.v_trans ? uint64_t{l.v_elem} * l.v_width : l.v_row));
  }
  return bytes;
}

absl::Status CutBlock(const ParsedState& parsed, std::span<const uint8_t> state, int32_t first,
                      uint32_t n, std::span<uint8_t> out) {
  const StateLayout& layout = parsed.layout;
  if (out.size() != PayloadBytes(layout, n)) {
    return absl::InvalidArgumentError("block buffer of the wrong size");
  }
  std::vector<int64_t> cells(n);
  for (uint32_t t = 0; t < n; ++t) {
    cells[t] = CellOf(parsed, first + static_cast<int32_t>(t));
    if (cells[t] < 0) {
      return absl::FailedPreconditionError(
          absl::StrFormat("position %d is not in the sequence", first + t));
    }
  }
  uint8_t* to = out.data();
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const uint64_t row = layout.layers[l].k_row;
    for (int64_t cell : cells) {
      std::memcpy(to, state.data() + parsed.k_offset[l] + cell * row, row);
      to += row;
    }
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const LayerLayout& layer = layout.layers[l];
    if (!layout.v_trans) {
      for (int64_t cell : cells) {
        std::memcpy(to, state.data() + parsed.v_offset[l] + cell * layer.v_row, layer.v_row);
        to += layer.v_row;
      }
      continue;
    }
    // Transposed: element j of every cell is one row of `parsed.cells`.
    for (uint32_t j = 0; j < layer.v_width; ++j) {
      const uint8_t* row =
          state.data() + parsed.v_offset[l] + uint64_t{j} * parsed.cells * layer.v_elem;
      for (int64_t cell : cells) {
        std::memcpy(to, row + cell * layer.v_elem, layer.v_elem);
        to += layer.v_elem;
      }
    }
  }
  return absl::OkStatus();
}

size_t StateBytes(const StateLayout& layout, size_t blocks, uint32_t block_tokens) {
  const size_t cells = blocks * block_tokens;
  return HeaderBytes(layout) + cells * kCellBytes +
         PayloadBytes(layout, static_cast<uint32_t>(cells));
}

absl::Status AssembleState(const StateLayout& layout, int32_t seq,
                           std::span<const std::span<const uint8_t>> payloads,
                           uint32_t block_tokens, std::span<uint8_t> state) {
  if (state.size() != StateBytes(layout, payloads.size(), block_tokens)) {
    return absl::InvalidArgumentError("state buffer of the wrong size");
  }
  const uint32_t cells = static_cast<uint32_t>(payloads.size()) * block_tokens;
  Writer out(state);
  out.Put(kStateMagic);
  out.Put(seq);
  out.Put(layout.n_stream);
  // The sequence's own stream is chosen by llama.cpp from its id; the
  // order of streams in the state does not matter.
  out.Put(cells);
  for (int32_t pos = 0; pos < static_cast<int32_t>(cells); ++pos) {
    out.Put(pos);
    out.Put(uint32_t{1});
    out.Put(seq);
  }
  out.Put(uint32_t{layout.v_trans ? 1u : 0u});
  out.Put(static_cast<uint32_t>(layout.layers.size()));
  // Offsets inside one payload: where layer l's K and V begin.
  size_t at = 0;
  std::vector<size_t> k_at, v_at;
  for (const LayerLayout& l : layout.layers) {
    k_at.push_back(at);
    at += block_tokens * l.k_row;
  }
  for (const LayerLayout& l : layout.layers) {
    v_at.push_back(at);
    at += block_tokens * (layout.v_trans ? uint64_t{l.v_elem} * l.v_width : l.v_row);
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    out.Put(layout.layers[l].k_type);
    out.Put(layout.layers[l].k_row);
    for (auto payload : payloads) {
      out.Append(payload.data() + k_at[l], block_tokens * layout.layers[l].k_row);
    }
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const LayerLayout& layer = layout.layers[l];
    out.Put(layer.v_type);
    if (!layout.v_trans) {
      out.Put(layer.v_row);
      for (auto payload : payloads)
        out.Append(payload.data() + v_at[l], block_tokens * layer.v_row);
      continue;
    }
    out.Put(layer.v_elem);
    out.Put(layer.v_width);
    const size_t run = uint64_t{block_tokens} * layer.v_elem;
    for (uint32_t j = 0; j < layer.v_width; ++j) {
      for (auto payload : payloads) out.Append(payload.data() + v_at[l] + j * run, run);
    }
  }
  for (uint32_t s = 1; s < layout.n_stream; ++s) out.Put(uint32_t{0});
  return absl::OkStatus();
}

}  // namespace unipool::llama
