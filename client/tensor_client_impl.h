// TensorClient's implementation, shared by tensor_client.cc (tensors) and
// model_client.cc (models).
//
// Thread safety: thread-safe (Client and TensorDirectory are).
#ifndef UNIPOOL_CLIENT_TENSOR_CLIENT_IMPL_H_
#define UNIPOOL_CLIENT_TENSOR_CLIENT_IMPL_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tensor_directory.h"
#include "unipool/client.h"
#include "unipool/tensor.h"
#include "unipool/tensor/records.h"
#include "unipool/tensor/striping.h"

namespace unipool {

// Stripes put in one BatchPut (and read in one BatchGet): bounded so that a
// batch commits well within the directory's put timeout and scratch memory
// stays small.
inline constexpr uint64_t kStripeBatchBytes = 1ull << 30;
inline constexpr size_t kStripeBatchCount = 64;

class TensorClient::Impl {
 public:
  Impl(std::unique_ptr<Client> client, const ClientOptions& options, ClientSecurity security)
      : client_(std::move(client)), directory_(options, std::move(security)) {}

  Client& client() { return *client_; }
  TensorDirectory& directory() { return directory_; }

  // Puts every stripe of `bytes` under record's stripe keys; `done(bytes)`
  // after each batch. On failure the stripes already put are in `put`.
  absl::Status PutStripes(const TensorRecord& record, std::span<const uint8_t> bytes, int replicas,
                          std::vector<std::string>& put, const std::function<void(uint64_t)>& done);
  // Best effort: removes stripes of a failed put or load (the directory
  // removes what is left once the load has been quiet long enough).
  void RemoveStripes(const std::vector<std::string>& keys);

  // Bytes [begin, begin + out.size()) of a looked-up tensor.
  absl::Status ReadRange(const TensorRecord& record, uint64_t begin, std::span<uint8_t> out);
  // Reads each of `stripes` whole and hands it to `use`, in batches.
  absl::Status ReadStripes(const TensorRecord& record, std::span<const uint64_t> stripes,
                           const std::function<void(uint64_t, std::span<const uint8_t>)>& use);
  absl::StatusOr<TensorRecord> Lookup(std::string_view name);

  static TensorInfo InfoOf(const TensorRecord& record);
  static uint64_t NewLoadId();

 private:
  std::unique_ptr<Client> client_;
  TensorDirectory directory_;
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_TENSOR_CLIENT_IMPL_H_
