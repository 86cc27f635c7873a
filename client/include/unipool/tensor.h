// unipool tensors and models: named tensors (dtype, shape, bytes) stored in
// stripes across the pool's nodes, and models (named sets of tensors loaded
// from safetensors files).
//
//   auto tensors = unipool::TensorClient::Connect({.directory = "10.0.0.1:7300"});
//   (*tensors)->LoadModel("/models/llama3-8b", "llama3-8b");
//   std::vector<uint8_t> wq(info.length);
//   (*tensors)->GetTensorRows("llama3-8b/model.layers.0.self_attn.q_proj.weight", 0, 1024, wq);
//
// A tensor is cut into stripes (64 MiB by default), each an ordinary object
// placed by free space, checksummed and replicated, so a tensor may be far
// larger than any node (up to 1 TiB). Reads fetch the stripes they need from
// all their nodes at once, straight into the caller's buffer (a partial
// stripe at either end of a range goes through a scratch buffer: a stripe's
// checksum covers the whole stripe).
//
// Whole or nothing: a tensor, and a model, becomes visible at once after all
// its stripes are stored; a failed or interrupted put or load leaves nothing
// visible and frees what it stored (the directory frees what a crashed
// client left). A tensor that loses a stripe (evicted, or on a node whose
// memory was lost) is removed whole, with its model; a pinned model is never
// evicted. Model tensors are named MODEL/TENSOR.
//
// Errors as for Client (unipool/client.h); also NotFound for an unknown
// tensor or model, AlreadyExists for a name in use, InvalidArgument for a
// bad safetensors file (naming the file and tensor) or a buffer too small.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_TENSOR_H_
#define UNIPOOL_TENSOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "unipool/client.h"

namespace unipool {

struct TensorPutOptions {
  // Bytes per stripe, 4 KiB..1 GiB. Default 64 MiB: a tensor spreads over
  // nodes, and a row range reads little beyond what it asks for.
  uint64_t stripe_size = 64ull << 20;
  // Copies of every stripe, on distinct nodes. Default 1.
  int replicas = 1;
};

// Where one stripe's copies are.
struct TensorStripe {
  uint64_t checksum = 0;  // XXH3-64 of the stripe
  std::vector<uint32_t> node_ids;
  std::vector<bool> nodes_up;
};

struct TensorInfo {
  std::string name;
  std::string model;  // empty for a tensor put alone
  std::string dtype;  // safetensors name: F32, BF16, I8, ...
  std::vector<uint64_t> shape;
  uint64_t length = 0;  // bytes
  uint64_t stripe_size = 0;
  int64_t created_unix_ms = 0;
  std::vector<TensorStripe> stripes;  // by TensorInfo(); empty in listings
};

struct ModelInfo {
  std::string name;
  uint64_t bytes = 0;
  size_t tensor_count = 0;
  int64_t created_unix_ms = 0;
  bool pinned = false;
  std::map<std::string, std::string> metadata;  // the first file's __metadata__
  std::vector<std::string> files;               // safetensors files it came from
  // By ModelInfo(): every tensor, named within the model, in file order.
  std::vector<TensorInfo> tensors;
};

struct LoadProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  size_t tensors_done = 0;
  size_t tensors_total = 0;
};

struct ModelLoadOptions {
  uint64_t stripe_size = 64ull << 20;  // as TensorPutOptions
  int replicas = 1;
  // Pin the model as it is published (never evicted). Default false.
  bool pin = false;
  // Called on the loading thread after each batch of stripes is stored.
  std::function<void(const LoadProgress&)> progress;
};

class TensorClient {
 public:
  static absl::StatusOr<std::unique_ptr<TensorClient>> Connect(const ClientOptions& options);
  ~TensorClient();
  TensorClient(const TensorClient&) = delete;
  TensorClient& operator=(const TensorClient&) = delete;

  // Stores a tensor: `bytes` must be dtype's size x the shape's elements.
  absl::Status PutTensor(std::string_view name, std::string_view dtype,
                         std::span<const uint64_t> shape, std::span<const uint8_t> bytes,
                         const TensorPutOptions& options = {});

  // Reads the whole tensor into `out` and returns its length (InvalidArgument
  // when `out` is smaller).
  absl::StatusOr<uint64_t> GetTensor(std::string_view name, std::span<uint8_t> out);
  // Reads bytes [begin, begin + out.size()) of the tensor.
  absl::Status GetTensorRange(std::string_view name, uint64_t begin, std::span<uint8_t> out);
  // Rows [row_begin, row_begin + rows) of the first dimension; returns the
  // bytes written to `out`.
  absl::StatusOr<uint64_t> GetTensorRows(std::string_view name, uint64_t row_begin, uint64_t rows,
                                         std::span<uint8_t> out);
  // Columns [col_begin, col_begin + cols) of the second dimension, gathered
  // row by row into `out` (a contiguous [rows, cols, ...] tensor); returns
  // the bytes written.
  absl::StatusOr<uint64_t> GetTensorColumns(std::string_view name, uint64_t col_begin,
                                            uint64_t cols, std::span<uint8_t> out);

  absl::StatusOr<TensorInfo> GetTensorInfo(std::string_view name);
  // Tensors (models' too) whose names start with `prefix`, by name.
  absl::StatusOr<std::vector<TensorInfo>> ListTensors(std::string_view prefix = {});
  // A tensor put alone (a model's tensors go with RemoveModel).
  absl::Status RemoveTensor(std::string_view name);

  // Loads a .safetensors file, or a folder of shards with
  // model.safetensors.index.json, as model `name`. Every header is checked
  // before anything is stored.
  absl::Status LoadModel(const std::string& path, std::string_view name,
                         const ModelLoadOptions& options = {});
  absl::StatusOr<ModelInfo> GetModelInfo(std::string_view name);
  absl::StatusOr<std::vector<ModelInfo>> ListModels(std::string_view prefix = {});
  // Writes the model's safetensors files (and index) into folder `dir`,
  // byte-identical to the files loaded.
  absl::Status ExportModel(std::string_view name, const std::string& dir);
  absl::Status RemoveModel(std::string_view name);
  absl::Status PinModel(std::string_view name, bool unpin = false);

  // The object client underneath (stats, status).
  Client& client();

 private:
  class Impl;
  explicit TensorClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace unipool

#endif  // UNIPOOL_TENSOR_H_
