// The directory requests behind TensorClient: publish, look up, list,
// remove and pin tensor and model records. Records from the directory are
// checked (records.h) before use.
//
// Thread safety: thread-safe (pooled connections).
#ifndef UNIPOOL_CLIENT_TENSOR_DIRECTORY_H_
#define UNIPOOL_CLIENT_TENSOR_DIRECTORY_H_

#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "client_security.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/tensor.h"
#include "unipool/tensor/records.h"
#include "unipool/transport/connection_pool.h"

namespace unipool {

class TensorDirectory {
 public:
  // `credential`: the key or token proven to the directory (null: none).
  TensorDirectory(const ClientOptions& options, ClientSecurity security);

  absl::Status Publish(std::span<const TensorRecord> tensors, const ModelRecord* model);

  struct Found {
    std::vector<TensorRecord> tensors;  // one, or the model's in file order
    std::optional<ModelRecord> model;
    std::vector<TensorStripe> stripes;  // a tensor lookup: one per stripe
  };
  // A tensor (leasing all its stripes), or with `model`, a model.
  absl::StatusOr<Found> Lookup(std::string_view name, bool model);

  absl::StatusOr<std::vector<TensorRecord>> ListTensors(std::string_view prefix);
  absl::StatusOr<std::vector<ModelRecord>> ListModels(std::string_view prefix);
  absl::Status Remove(std::string_view name, bool model);
  absl::Status Pin(std::string_view name, bool unpin);

 private:
  absl::StatusOr<ReceivedFrame> Call(const flatbuffers::FlatBufferBuilder& request);
  // The single status of a StatusList reply to `what`.
  absl::Status CallForStatus(const flatbuffers::FlatBufferBuilder& request, std::string_view what);

  const std::string directory_;
  ConnectionPool pool_;
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_TENSOR_DIRECTORY_H_
