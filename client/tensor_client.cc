// TensorClient: tensors put in stripes and read back whole, by byte range,
// rows or columns.
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tensor_client_impl.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/tensor/dtype.h"

namespace unipool {
namespace {

absl::Status InTensor(const TensorRecord& record, uint64_t stripe, const absl::Status& status) {
  return absl::Status(
      status.code(), absl::StrFormat("tensor '%s' stripe %d: %s", PrintableKey(record.name), stripe,
                                     status.message()));
}

// Stripes of one batch: keys and where each goes.
struct StripeBatch {
  std::vector<uint64_t> stripes;
  std::vector<std::string> keys;
  uint64_t bytes = 0;
  bool full() const { return stripes.size() >= kStripeBatchCount || bytes >= kStripeBatchBytes; }
};

}  // namespace

uint64_t TensorClient::Impl::NewLoadId() {
  std::random_device random;
  uint64_t id = (static_cast<uint64_t>(random()) << 32) ^ random();
  return id ^ static_cast<uint64_t>(absl::GetCurrentTimeNanos());
}

TensorInfo TensorClient::Impl::InfoOf(const TensorRecord& record) {
  return TensorInfo{.name = record.name,
                    .model = record.model,
                    .dtype = record.dtype,
                    .shape = record.shape,
                    .length = record.length,
                    .stripe_size = record.stripe_size,
                    .created_unix_ms = record.created_unix_ms};
}

absl::Status TensorClient::Impl::PutStripes(const TensorRecord& record,
                                            std::span<const uint8_t> bytes, int replicas,
                                            std::vector<std::string>& put,
                                            const std::function<void(uint64_t)>& done) {
  StripeLayout layout = record.layout();
  StripeBatch batch;
  auto flush = [&]() -> absl::Status {
    std::vector<std::string_view> keys(batch.keys.begin(), batch.keys.end());
    std::vector<std::span<const uint8_t>> values;
    for (uint64_t s : batch.stripes) {
      values.push_back(bytes.subspan(layout.stripe_begin(s), layout.stripe_length(s)));
    }
    std::vector<absl::Status> results = client_->BatchPut(keys, values, {.replicas = replicas});
    absl::Status first = absl::OkStatus();
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].ok()) put.push_back(batch.keys[i]);
      if (!results[i].ok() && first.ok()) first = InTensor(record, batch.stripes[i], results[i]);
    }
    if (first.ok() && done) done(batch.bytes);
    batch = StripeBatch();
    return first;
  };
  for (uint64_t s = 0; s < layout.stripes(); ++s) {
    batch.stripes.push_back(s);
    batch.keys.push_back(record.stripe_key(s));
    batch.bytes += layout.stripe_length(s);
    if (batch.full()) RETURN_IF_ERROR(flush());
  }
  if (!batch.stripes.empty()) RETURN_IF_ERROR(flush());
  return absl::OkStatus();
}

void TensorClient::Impl::RemoveStripes(const std::vector<std::string>& keys) {
  for (size_t at = 0; at < keys.size(); at += kMaxBatchItems) {
    size_t n = std::min(kMaxBatchItems, keys.size() - at);
    std::vector<std::string_view> views(keys.begin() + at, keys.begin() + at + n);
    (void)client_->BatchRemove(views);
  }
}

absl::StatusOr<TensorRecord> TensorClient::Impl::Lookup(std::string_view name) {
  ASSIGN_OR_RETURN(TensorDirectory::Found found, directory_.Lookup(name, /*model=*/false));
  return std::move(found.tensors[0]);
}

// Whole stripes land in `out` directly; a stripe cut by the range's ends is
// read into scratch (its checksum covers the whole stripe) and copied.
absl::Status TensorClient::Impl::ReadRange(const TensorRecord& record, uint64_t begin,
                                           std::span<uint8_t> out) {
  StripeLayout layout = record.layout();
  ASSIGN_OR_RETURN(std::vector<StripePiece> pieces, PiecesOfRange(layout, begin, out.size()));
  size_t at = 0;
  while (at < pieces.size()) {
    StripeBatch batch;
    std::vector<std::span<uint8_t>> buffers;
    std::vector<std::vector<uint8_t>> scratch(pieces.size() - at);
    size_t first = at;
    for (; at < pieces.size() && !batch.full(); ++at) {
      const StripePiece& p = pieces[at];
      uint64_t length = layout.stripe_length(p.stripe);
      batch.stripes.push_back(p.stripe);
      batch.keys.push_back(record.stripe_key(p.stripe));
      batch.bytes += length;
      if (p.length == length) {
        buffers.push_back(out.subspan(p.out_offset, p.length));
      } else {
        scratch[at - first].resize(length);
        buffers.push_back(scratch[at - first]);
      }
    }
    std::vector<std::string_view> keys(batch.keys.begin(), batch.keys.end());
    std::vector<absl::StatusOr<size_t>> got = client_->BatchGet(keys, buffers);
    for (size_t i = 0; i < got.size(); ++i) {
      const StripePiece& p = pieces[first + i];
      if (!got[i].ok()) return InTensor(record, p.stripe, got[i].status());
      if (*got[i] != layout.stripe_length(p.stripe)) {
        return InTensor(record, p.stripe, absl::DataLossError("stripe has the wrong length"));
      }
      if (!scratch[i].empty()) {
        std::memcpy(out.data() + p.out_offset, scratch[i].data() + p.stripe_offset, p.length);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TensorClient::Impl::ReadStripes(
    const TensorRecord& record, std::span<const uint64_t> stripes,
    const std::function<void(uint64_t, std::span<const uint8_t>)>& use) {
  StripeLayout layout = record.layout();
  size_t at = 0;
  while (at < stripes.size()) {
    StripeBatch batch;
    std::vector<std::vector<uint8_t>> scratch;
    for (; at < stripes.size() && !batch.full(); ++at) {
      batch.stripes.push_back(stripes[at]);
      batch.keys.push_back(record.stripe_key(stripes[at]));
      batch.bytes += layout.stripe_length(stripes[at]);
      scratch.emplace_back(layout.stripe_length(stripes[at]));
    }
    std::vector<std::string_view> keys(batch.keys.begin(), batch.keys.end());
    std::vector<std::span<uint8_t>> buffers(scratch.begin(), scratch.end());
    std::vector<absl::StatusOr<size_t>> got = client_->BatchGet(keys, buffers);
    for (size_t i = 0; i < got.size(); ++i) {
      if (!got[i].ok()) return InTensor(record, batch.stripes[i], got[i].status());
      if (*got[i] != scratch[i].size()) {
        return InTensor(record, batch.stripes[i],
                        absl::DataLossError("stripe has the wrong length"));
      }
      use(batch.stripes[i], scratch[i]);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TensorClient>> TensorClient::Connect(const ClientOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(options));
  ASSIGN_OR_RETURN(ClientSecurity security, LoadClientSecurity(options));
  return std::unique_ptr<TensorClient>(
      new TensorClient(std::make_unique<Impl>(std::move(client), options, std::move(security))));
}

TensorClient::TensorClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorClient::~TensorClient() = default;
Client& TensorClient::client() { return impl_->client(); }

absl::Status TensorClient::PutTensor(std::string_view name, std::string_view dtype,
                                     std::span<const uint64_t> shape,
                                     std::span<const uint8_t> bytes,
                                     const TensorPutOptions& options) {
  TensorRecord record{.name = std::string(name),
                      .dtype = std::string(dtype),
                      .shape = std::vector<uint64_t>(shape.begin(), shape.end()),
                      .length = bytes.size(),
                      .stripe_size = options.stripe_size,
                      .load_id = Impl::NewLoadId()};
  RETURN_IF_ERROR(CheckTensorRecord(record));
  std::vector<std::string> put;
  absl::Status status = impl_->PutStripes(record, bytes, options.replicas, put, nullptr);
  if (status.ok()) status = impl_->directory().Publish({&record, 1}, nullptr);
  if (!status.ok()) impl_->RemoveStripes(put);
  return status;
}

absl::StatusOr<uint64_t> TensorClient::GetTensor(std::string_view name, std::span<uint8_t> out) {
  ASSIGN_OR_RETURN(TensorRecord record, impl_->Lookup(name));
  if (out.size() < record.length) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor '%s' is %d bytes; the buffer holds %d", PrintableKey(name),
                        record.length, out.size()));
  }
  RETURN_IF_ERROR(impl_->ReadRange(record, 0, out.first(record.length)));
  return record.length;
}

absl::Status TensorClient::GetTensorRange(std::string_view name, uint64_t begin,
                                          std::span<uint8_t> out) {
  ASSIGN_OR_RETURN(TensorRecord record, impl_->Lookup(name));
  return impl_->ReadRange(record, begin, out);
}

absl::StatusOr<uint64_t> TensorClient::GetTensorRows(std::string_view name, uint64_t row_begin,
                                                     uint64_t rows, std::span<uint8_t> out) {
  ASSIGN_OR_RETURN(TensorRecord record, impl_->Lookup(name));
  ASSIGN_OR_RETURN(ByteRange range,
                   RowBytes(record.shape, *DTypeSize(record.dtype), row_begin, rows));
  if (out.size() < range.length()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rows of tensor '%s' are %d bytes; the "
                        "buffer holds %d",
                        PrintableKey(name), range.length(), out.size()));
  }
  RETURN_IF_ERROR(impl_->ReadRange(record, range.begin, out.first(range.length())));
  return range.length();
}

absl::StatusOr<uint64_t> TensorClient::GetTensorColumns(std::string_view name, uint64_t col_begin,
                                                        uint64_t cols, std::span<uint8_t> out) {
  ASSIGN_OR_RETURN(TensorRecord record, impl_->Lookup(name));
  ASSIGN_OR_RETURN(ColumnSlice slice,
                   ColumnsOf(record.shape, *DTypeSize(record.dtype), col_begin, cols));
  if (out.size() < slice.gathered_bytes()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("columns of tensor '%s' are %d bytes; the "
                        "buffer holds %d",
                        PrintableKey(name), slice.gathered_bytes(), out.size()));
  }
  StripeLayout layout = record.layout();
  std::vector<uint64_t> stripes = StripesOfColumns(layout, slice);
  RETURN_IF_ERROR(
      impl_->ReadStripes(record, stripes, [&](uint64_t stripe, std::span<const uint8_t> bytes) {
        GatherColumns(layout, slice, stripe, bytes, out);
      }));
  return slice.gathered_bytes();
}

absl::StatusOr<TensorInfo> TensorClient::GetTensorInfo(std::string_view name) {
  ASSIGN_OR_RETURN(TensorDirectory::Found found, impl_->directory().Lookup(name, false));
  TensorInfo info = Impl::InfoOf(found.tensors[0]);
  info.stripes = std::move(found.stripes);
  return info;
}

absl::StatusOr<std::vector<TensorInfo>> TensorClient::ListTensors(std::string_view prefix) {
  ASSIGN_OR_RETURN(std::vector<TensorRecord> records, impl_->directory().ListTensors(prefix));
  std::vector<TensorInfo> infos;
  infos.reserve(records.size());
  for (const TensorRecord& r : records) infos.push_back(Impl::InfoOf(r));
  return infos;
}

absl::Status TensorClient::RemoveTensor(std::string_view name) {
  return impl_->directory().Remove(name, /*model=*/false);
}

}  // namespace unipool
