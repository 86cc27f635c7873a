// The safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {str: str}}), then the tensors' bytes, contiguous,
// row-major, little-endian; offsets count from the first byte after the
// header. Sharded models add model.safetensors.index.json
// ({"metadata": {...}, "weight_map": {tensor: file}}).
//
// A header is untrusted input: parsing checks everything a reader relies on
// and names the tensor at fault. The original header bytes are kept so that
// a file written back from the same tensors is byte-identical.
#ifndef UNIPOOL_TENSOR_SAFETENSORS_H_
#define UNIPOOL_TENSOR_SAFETENSORS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace unipool {

// Largest header accepted (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // a safetensors dtype name (dtype.h)
  std::vector<uint64_t> shape;  // row-major; empty for a scalar
  uint64_t begin = 0;           // data_offsets, from the first data byte
  uint64_t end = 0;
  uint64_t bytes() const { return end - begin; }
};

struct SafetensorsHeader {
  // The file's first data_offset bytes exactly: the 8-byte length and the
  // JSON with any padding. Written back as is for byte-identical export.
  std::string raw;
  uint64_t data_offset = 0;                     // 8 + N
  std::vector<SafetensorsTensor> tensors;       // in data order (by begin)
  std::map<std::string, std::string> metadata;  // __metadata__
  // Bytes of tensor data after the header (the file is data_offset + this).
  uint64_t data_bytes() const { return tensors.empty() ? 0 : tensors.back().end; }
};

// Parses and checks a header. `raw` holds at least the file's first
// 8 + N bytes (more is ignored); `file_size` is the whole file's size. Errors
// (InvalidArgument) are one line naming `file_name` and the tensor: a header
// longer than the file, bad JSON, a duplicate name, an unknown dtype, a
// shape whose byte size disagrees with data_offsets, offsets out of range,
// overlapping or gapped data, data that does not end where the file ends.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::span<const uint8_t> raw,
                                                         uint64_t file_size,
                                                         std::string_view file_name);

// Builds the header bytes of a new file holding `tensors` (their begin/end
// are ignored and laid out contiguously in the given order; the result's
// tensors say where). JSON padded with spaces to a multiple of 8 bytes, as
// the reference writer does. InvalidArgument for an unknown dtype or a
// duplicate name.
absl::StatusOr<SafetensorsHeader> BuildSafetensorsHeader(
    std::vector<SafetensorsTensor> tensors, const std::map<std::string, std::string>& metadata);

// model.safetensors.index.json: which file holds each tensor.
struct SafetensorsIndex {
  std::string raw;                                // the file's bytes, for export
  std::map<std::string, std::string> weight_map;  // tensor name -> file name
  std::vector<std::string> files;                 // distinct files, sorted
};

// Checks that every file name is a plain name in the same folder (no '/',
// not "." or ".."), and that weight_map is an object of strings.
absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json);

// ------------------------------------------------------------------ files

inline constexpr std::string_view kSafetensorsIndexName = "model.safetensors.index.json";

struct SafetensorsFile {
  std::string name;  // file name inside the model (no folder)
  std::string path;  // where it was read from
  uint64_t size = 0;
  SafetensorsHeader header;
};

// A model on disk: one .safetensors file, or a folder of shards with an
// index (every tensor of the index in the file it names, and no other).
struct SafetensorsModel {
  std::vector<SafetensorsFile> files;  // in index order (sorted names)
  std::string index_raw;               // empty for a single file
  uint64_t data_bytes() const;         // tensor bytes over all files
  size_t tensor_count() const;
};

// Reads and checks the header of the file at `path`.
absl::StatusOr<SafetensorsFile> ReadSafetensorsFile(const std::string& path);

// `path` is a .safetensors file or a folder with model.safetensors.index.json
// (a folder without an index but with exactly one .safetensors file is read
// as that file). Tensor names must be unique across shards.
absl::StatusOr<SafetensorsModel> OpenSafetensorsModel(const std::string& path);

// Fills `out` with the tensor's bytes from byte `offset` of the tensor.
using TensorBytesSource =
    std::function<absl::Status(const SafetensorsTensor&, uint64_t offset, std::span<uint8_t> out)>;

// Writes `header.raw` and then each tensor's bytes in data order to `path`
// (through a temporary file renamed into place), asking `fill` for pieces
// of at most kSafetensorsWriteChunk bytes.
inline constexpr uint64_t kSafetensorsWriteChunk = 256ull << 20;
absl::Status WriteSafetensorsFile(const std::string& path, const SafetensorsHeader& header,
                                  const TensorBytesSource& fill);

}  // namespace unipool

#endif  // UNIPOOL_TENSOR_SAFETENSORS_H_
