// Tensor and model records: checks, and their FlatBuffers form.
#include "unipool/tensor/records.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "unipool/common/status_macros.h"
#include "unipool/tensor/dtype.h"
#include "unipool/tensor/safetensors.h"

namespace unipool {
namespace {

// Large enough for a model with a million tensors' names and headers.
constexpr size_t kMaxRecordTables = 16u << 20;

std::string FromWire(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
std::string FromWire(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}

absl::Status CheckName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > kMaxTensorNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s name must be 1..%d bytes", what, kMaxTensorNameBytes));
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> DecodeStandalone(std::string_view bytes,
                                   const std::function<absl::StatusOr<T>(const uint8_t*)>& convert,
                                   bool (*verify)(flatbuffers::Verifier&)) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier verifier(data, bytes.size(), 64, kMaxRecordTables);
  if (!verify(verifier)) return absl::DataLossError("record fails FlatBuffers verification");
  return convert(data);
}

// A file's tensors as its header lists them, checked against the records.
absl::Status CheckFile(const ModelRecord& model, const ModelFileRecord& file,
                       const absl::flat_hash_map<std::string, const TensorRecord*>& by_name) {
  uint64_t data_bytes = 0;
  for (const std::string& local : file.tensors) {
    auto it = by_name.find(ModelTensorName(model.name, local));
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "model '%s': file %s lists tensor '%s' with no record", model.name, file.name, local));
    }
    data_bytes += it->second->length;
  }
  std::span<const uint8_t> raw(reinterpret_cast<const uint8_t*>(file.header.data()),
                               file.header.size());
  ASSIGN_OR_RETURN(SafetensorsHeader header,
                   ParseSafetensorsHeader(raw, raw.size() + data_bytes, file.name));
  if (header.data_offset != raw.size() || header.tensors.size() != file.tensors.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "model '%s': file %s's header does not list the file's tensors", model.name, file.name));
  }
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const SafetensorsTensor& t = header.tensors[i];
    const TensorRecord& r = *by_name.at(ModelTensorName(model.name, file.tensors[i]));
    if (t.name != file.tensors[i] || t.dtype != r.dtype || t.shape != r.shape ||
        t.bytes() != r.length) {
      return absl::InvalidArgumentError(
          absl::StrFormat("model '%s': tensor '%s' differs from file %s's header", model.name,
                          file.tensors[i], file.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string StripeKeyPrefix(uint64_t load_id) {
  return absl::StrFormat("%s%016x/", kStripeKeyPrefix, load_id);
}

std::string StripeKey(uint64_t load_id, std::string_view owner, uint32_t index, uint64_t stripe) {
  std::string key = StripeKeyPrefix(load_id);
  key.append(owner);
  key.push_back('\0');
  return key + absl::StrFormat("%d/%d", index, stripe);
}

std::optional<uint64_t> LoadIdOfStripeKey(std::string_view key) {
  if (key.size() < kStripeKeyPrefix.size() + 17 || key.substr(0, 4) != kStripeKeyPrefix ||
      key[kStripeKeyPrefix.size() + 16] != '/') {
    return std::nullopt;
  }
  uint64_t id = 0;
  for (char c : key.substr(kStripeKeyPrefix.size(), 16)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    id = id << 4 | static_cast<uint64_t>(digit);
  }
  return id;
}

std::optional<std::string_view> StripeKeyScope(std::string_view key) {
  if (!LoadIdOfStripeKey(key).has_value()) return std::nullopt;
  return key.substr(kStripeKeyPrefix.size() + 17);
}

std::string ModelTensorName(std::string_view model, std::string_view tensor) {
  return absl::StrFormat("%s/%s", model, tensor);
}

absl::Status CheckTensorRecord(const TensorRecord& r) {
  RETURN_IF_ERROR(CheckName(r.name, "tensor"));
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrFormat("tensor '%s': %s", r.name, what));
  };
  absl::StatusOr<uint64_t> bytes = TensorBytes(r.dtype, r.shape);
  if (!bytes.ok()) return bad(std::string(bytes.status().message()));
  if (*bytes != r.length) {
    return bad(absl::StrFormat("%s x shape is %d bytes, not %d", r.dtype, *bytes, r.length));
  }
  absl::Status layout = CheckLayout(r.layout());
  if (!layout.ok()) return bad(std::string(layout.message()));
  if (!r.model.empty() && r.name.rfind(r.model + "/", 0) != 0) {
    return bad(absl::StrFormat("name does not start with its model's '%s/'", r.model));
  }
  return absl::OkStatus();
}

absl::Status CheckModelRecord(const ModelRecord& model, std::span<const TensorRecord> tensors) {
  RETURN_IF_ERROR(CheckName(model.name, "model"));
  absl::flat_hash_map<std::string, const TensorRecord*> by_name;
  absl::flat_hash_set<uint32_t> indices;
  uint64_t bytes = 0;
  for (const TensorRecord& t : tensors) {
    RETURN_IF_ERROR(CheckTensorRecord(t));
    if (t.model != model.name || t.load_id != model.load_id || !indices.insert(t.index).second ||
        !by_name.emplace(t.name, &t).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "model '%s': tensor '%s' has another model, load, or a repeated name or index",
          model.name, t.name));
    }
    bytes += t.length;
  }
  size_t listed = 0;
  for (const ModelFileRecord& file : model.files) {
    RETURN_IF_ERROR(CheckFile(model, file, by_name));
    listed += file.tensors.size();
  }
  if (listed != tensors.size() || model.tensors != tensors.size() || model.bytes != bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "model '%s': files list %d tensors, the record says %d tensors of %d bytes, and %d "
        "tensors of %d bytes came with it",
        model.name, listed, model.tensors, model.bytes, tensors.size(), bytes));
  }
  return absl::OkStatus();
}

flatbuffers::Offset<wire::TensorRecord> BuildTensorRecord(flatbuffers::FlatBufferBuilder& fbb,
                                                          const TensorRecord& r) {
  auto name = fbb.CreateString(r.name);
  auto model = fbb.CreateString(r.model);
  auto dtype = fbb.CreateString(r.dtype);
  auto shape = fbb.CreateVector(r.shape);
  return wire::CreateTensorRecord(fbb, name, model, dtype, shape, r.length, r.stripe_size,
                                  r.load_id, r.index, r.created_unix_ms);
}

flatbuffers::Offset<wire::ModelRecord> BuildModelRecord(flatbuffers::FlatBufferBuilder& fbb,
                                                        const ModelRecord& r) {
  std::vector<flatbuffers::Offset<wire::ModelFile>> files;
  for (const ModelFileRecord& f : r.files) {
    auto name = fbb.CreateString(f.name);
    auto header =
        fbb.CreateVector(reinterpret_cast<const uint8_t*>(f.header.data()), f.header.size());
    auto tensors = fbb.CreateVectorOfStrings(f.tensors);
    files.push_back(wire::CreateModelFile(fbb, name, header, tensors));
  }
  auto name = fbb.CreateString(r.name);
  auto file_vec = fbb.CreateVector(files);
  auto index =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(r.index_json.data()), r.index_json.size());
  return wire::CreateModelRecord(fbb, name, r.load_id, file_vec, index, r.bytes, r.tensors,
                                 r.created_unix_ms, r.pinned);
}

absl::StatusOr<TensorRecord> TensorRecordFromWire(const wire::TensorRecord* w) {
  if (w == nullptr) return absl::InvalidArgumentError("missing tensor record");
  TensorRecord r;
  r.name = FromWire(w->name());
  r.model = FromWire(w->model());
  r.dtype = FromWire(w->dtype());
  if (w->shape()) r.shape.assign(w->shape()->begin(), w->shape()->end());
  r.length = w->length();
  r.stripe_size = w->stripe_size();
  r.load_id = w->load_id();
  r.index = w->index();
  r.created_unix_ms = w->created_unix_ms();
  RETURN_IF_ERROR(CheckTensorRecord(r));
  return r;
}

absl::StatusOr<ModelRecord> ModelRecordFromWire(const wire::ModelRecord* w) {
  if (w == nullptr) return absl::InvalidArgumentError("missing model record");
  ModelRecord r;
  r.name = FromWire(w->name());
  RETURN_IF_ERROR(CheckName(r.name, "model"));
  r.load_id = w->load_id();
  if (w->files()) {
    for (const wire::ModelFile* f : *w->files()) {
      ModelFileRecord file;
      file.name = FromWire(f->name());
      file.header = FromWire(f->header());
      if (f->tensors()) {
        for (const flatbuffers::String* t : *f->tensors()) file.tensors.push_back(t->str());
      }
      r.files.push_back(std::move(file));
    }
  }
  r.index_json = FromWire(w->index_json());
  r.bytes = w->bytes();
  r.tensors = w->tensors();
  r.created_unix_ms = w->created_unix_ms();
  r.pinned = w->pinned();
  return r;
}

std::string EncodeTensorRecord(const TensorRecord& record) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(BuildTensorRecord(fbb, record));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

absl::StatusOr<TensorRecord> DecodeTensorRecord(std::string_view bytes) {
  return DecodeStandalone<TensorRecord>(
      bytes,
      [](const uint8_t* data) {
        return TensorRecordFromWire(flatbuffers::GetRoot<wire::TensorRecord>(data));
      },
      [](flatbuffers::Verifier& v) { return v.VerifyBuffer<wire::TensorRecord>(nullptr); });
}

std::string EncodeModelRecord(const ModelRecord& record) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(BuildModelRecord(fbb, record));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

absl::StatusOr<ModelRecord> DecodeModelRecord(std::string_view bytes) {
  return DecodeStandalone<ModelRecord>(
      bytes,
      [](const uint8_t* data) {
        return ModelRecordFromWire(flatbuffers::GetRoot<wire::ModelRecord>(data));
      },
      [](flatbuffers::Verifier& v) { return v.VerifyBuffer<wire::ModelRecord>(nullptr); });
}

}  // namespace unipool
