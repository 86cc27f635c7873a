// Tensor and model records: what the directory keeps about a tensor (dtype,
// shape, stripes) and a model (its tensors and the safetensors files they
// came from), as plain structs, with their FlatBuffers form
// (schema/unipool.fbs TensorRecord / ModelRecord) used both on the wire and
// as the directory's catalog values. Decoding verifies the buffer and checks
// every field, so a record from a peer or from disk is trusted only after it.
#ifndef UNIPOOL_TENSOR_RECORDS_H_
#define UNIPOOL_TENSOR_RECORDS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"
#include "unipool/tensor/striping.h"

namespace unipool {

// Stripes are ordinary objects under this prefix (a NUL byte first, so no
// text key collides): "\0ts/" + load id (16 hex digits) + "/" + owner +
// "\0" + tensor index + "/" + stripe index. The owner is the model's name
// (or a lone tensor's), so a stripe key falls under the same access scope
// as its tensor: a token confined to "tenant-a/" reaches only stripes whose
// owner starts with "tenant-a/" (directory/authorize.cc).
inline constexpr std::string_view kStripeKeyPrefix{"\0ts/", 4};
std::string StripeKeyPrefix(uint64_t load_id);  // every stripe of one load
std::string StripeKey(uint64_t load_id, std::string_view owner, uint32_t index, uint64_t stripe);
// The load id of a stripe key, or nullopt for any other key.
std::optional<uint64_t> LoadIdOfStripeKey(std::string_view key);
// What follows the load id of a stripe key (its owner first), or nullopt
// for any other key.
std::optional<std::string_view> StripeKeyScope(std::string_view key);

// Longest tensor or model name: a key is at most 1024 bytes, and a stripe
// key adds at most 64 bytes to its owner's name.
inline constexpr size_t kMaxTensorNameBytes = 960;

struct TensorRecord {
  std::string name;
  std::string model;  // empty for a lone tensor
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t length = 0;
  uint64_t stripe_size = kDefaultStripeSize;
  uint64_t load_id = 0;
  uint32_t index = 0;
  int64_t created_unix_ms = 0;

  StripeLayout layout() const { return {length, stripe_size}; }
  // A model's tensors are owned by the model, a lone tensor by itself.
  std::string stripe_key(uint64_t stripe) const {
    return StripeKey(load_id, model.empty() ? name : model, index, stripe);
  }
};

struct ModelFileRecord {
  std::string name;
  std::string header;                // the file's header bytes exactly
  std::vector<std::string> tensors;  // names within the model, in data order
};

struct ModelRecord {
  std::string name;
  uint64_t load_id = 0;
  std::vector<ModelFileRecord> files;
  std::string index_json;  // empty for a single file
  uint64_t bytes = 0;
  uint32_t tensors = 0;
  int64_t created_unix_ms = 0;
  bool pinned = false;
};

// A model's tensor `tensor` is stored as the tensor "MODEL/TENSOR".
std::string ModelTensorName(std::string_view model, std::string_view tensor);

// InvalidArgument naming the tensor: bad name, unknown dtype, a length that
// disagrees with dtype x shape, a stripe size or length out of bounds.
absl::Status CheckTensorRecord(const TensorRecord& record);
// Checks a model against exactly its tensors: names MODEL/TENSOR as its
// files list them, one load id, distinct indices, each file's header
// parses and agrees with the records' dtypes, shapes and lengths, totals.
absl::Status CheckModelRecord(const ModelRecord& model, std::span<const TensorRecord> tensors);

// FlatBuffers form.
flatbuffers::Offset<wire::TensorRecord> BuildTensorRecord(flatbuffers::FlatBufferBuilder& fbb,
                                                          const TensorRecord& record);
flatbuffers::Offset<wire::ModelRecord> BuildModelRecord(flatbuffers::FlatBufferBuilder& fbb,
                                                        const ModelRecord& record);
// Converts and checks (CheckTensorRecord); InvalidArgument when missing.
absl::StatusOr<TensorRecord> TensorRecordFromWire(const wire::TensorRecord* record);
absl::StatusOr<ModelRecord> ModelRecordFromWire(const wire::ModelRecord* record);

// Standalone buffers (catalog values). Decode verifies the buffer first.
std::string EncodeTensorRecord(const TensorRecord& record);
absl::StatusOr<TensorRecord> DecodeTensorRecord(std::string_view bytes);
std::string EncodeModelRecord(const ModelRecord& record);
absl::StatusOr<ModelRecord> DecodeModelRecord(std::string_view bytes);

}  // namespace unipool

#endif  // UNIPOOL_TENSOR_RECORDS_H_
