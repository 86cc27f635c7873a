// TensorClient: models loaded from safetensors files, described, exported
// byte-identical, pinned and removed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "tensor_client_impl.h"
#include "unipool/common/protocol.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"
#include "unipool/tensor/safetensors.h"

namespace unipool {
namespace {

// A safetensors file mapped read-only for the load (the page cache feeds
// the stripes with no copy of our own).
class MappedFile {
 public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const SafetensorsFile& file) {
    Fd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("open %s: %s", file.path, std::strerror(errno)));
    }
    if (static_cast<uint64_t>(st.st_size) != file.size) {
      return absl::AbortedError(absl::StrFormat("%s changed while loading", file.path));
    }
    void* data = ::mmap(nullptr, file.size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (data == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("mmap %s: %s", file.path, std::strerror(errno)));
    }
    ::madvise(data, file.size, MADV_SEQUENTIAL);
    return std::unique_ptr<MappedFile>(new MappedFile(static_cast<uint8_t*>(data), file.size));
  }
  ~MappedFile() { ::munmap(data_, size_); }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_;
  size_t size_;
};

// The records of model `name` loaded from `files` as load `load_id`.
ModelRecord ModelRecordOf(std::string_view name, const SafetensorsModel& files, uint64_t load_id,
                          const ModelLoadOptions& options, std::vector<TensorRecord>& tensors) {
  ModelRecord model{.name = std::string(name), .load_id = load_id, .index_json = files.index_raw};
  for (const SafetensorsFile& file : files.files) {
    ModelFileRecord record{.name = file.name, .header = file.header.raw};
    for (const SafetensorsTensor& t : file.header.tensors) {
      record.tensors.push_back(t.name);
      tensors.push_back(TensorRecord{.name = ModelTensorName(name, t.name),
                                     .model = std::string(name),
                                     .dtype = t.dtype,
                                     .shape = t.shape,
                                     .length = t.bytes(),
                                     .stripe_size = options.stripe_size,
                                     .load_id = load_id,
                                     .index = static_cast<uint32_t>(tensors.size())});
      model.bytes += t.bytes();
    }
    model.files.push_back(std::move(record));
  }
  model.tensors = static_cast<uint32_t>(tensors.size());
  model.pinned = options.pin;
  return model;
}

// A model file's header as parsed from its record (for export and info).
absl::StatusOr<SafetensorsHeader> HeaderOf(
    const ModelFileRecord& file, const absl::flat_hash_map<std::string, TensorRecord>& by_local) {
  uint64_t data_bytes = 0;
  for (const std::string& t : file.tensors) data_bytes += by_local.at(t).length;
  std::span<const uint8_t> raw(reinterpret_cast<const uint8_t*>(file.header.data()),
                               file.header.size());
  return ParseSafetensorsHeader(raw, raw.size() + data_bytes, file.name);
}

absl::StatusOr<absl::flat_hash_map<std::string, TensorRecord>> ByLocalName(
    const ModelRecord& model, const std::vector<TensorRecord>& tensors) {
  RETURN_IF_ERROR(CheckModelRecord(model, tensors));
  absl::flat_hash_map<std::string, TensorRecord> by_local;
  for (const TensorRecord& t : tensors) by_local[t.name.substr(model.name.size() + 1)] = t;
  return by_local;
}

bool PlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

}  // namespace

absl::Status TensorClient::LoadModel(const std::string& path, std::string_view name,
                                     const ModelLoadOptions& options) {
  ASSIGN_OR_RETURN(SafetensorsModel files, OpenSafetensorsModel(path));
  std::vector<TensorRecord> tensors;
  ModelRecord model = ModelRecordOf(name, files, Impl::NewLoadId(), options, tensors);
  RETURN_IF_ERROR(CheckModelRecord(model, tensors));
  if (impl_->directory().Lookup(name, /*model=*/true).ok()) {
    return absl::AlreadyExistsError(absl::StrFormat("model '%s' exists", PrintableKey(name)));
  }
  LoadProgress progress{.bytes_total = model.bytes, .tensors_total = tensors.size()};
  std::vector<std::string> put;
  absl::Status status = absl::OkStatus();
  size_t next = 0;
  for (const SafetensorsFile& file : files.files) {
    absl::StatusOr<std::unique_ptr<MappedFile>> mapped = MappedFile::Open(file);
    status = mapped.status();
    for (size_t i = 0; status.ok() && i < file.header.tensors.size(); ++i, ++next) {
      const SafetensorsTensor& t = file.header.tensors[i];
      std::span<const uint8_t> bytes =
          (*mapped)->bytes().subspan(file.header.data_offset + t.begin, t.bytes());
      status = impl_->PutStripes(tensors[next], bytes, options.replicas, put, [&](uint64_t n) {
        progress.bytes_done += n;
        if (options.progress) options.progress(progress);
      });
      ++progress.tensors_done;
    }
    if (!status.ok()) break;
  }
  if (status.ok()) status = impl_->directory().Publish(tensors, &model);
  if (!status.ok()) {
    impl_->RemoveStripes(put);
    return absl::Status(status.code(), absl::StrFormat("loading model '%s': %s", PrintableKey(name),
                                                       status.message()));
  }
  if (options.progress) options.progress(progress);
  return absl::OkStatus();
}

absl::StatusOr<ModelInfo> TensorClient::GetModelInfo(std::string_view name) {
  ASSIGN_OR_RETURN(TensorDirectory::Found found, impl_->directory().Lookup(name, true));
  const ModelRecord& model = *found.model;
  ASSIGN_OR_RETURN(auto by_local, ByLocalName(model, found.tensors));
  ModelInfo info{.name = model.name,
                 .bytes = model.bytes,
                 .tensor_count = model.tensors,
                 .created_unix_ms = model.created_unix_ms,
                 .pinned = model.pinned};
  for (const ModelFileRecord& file : model.files) {
    info.files.push_back(file.name);
    if (info.files.size() == 1) {
      ASSIGN_OR_RETURN(SafetensorsHeader header, HeaderOf(file, by_local));
      info.metadata = std::move(header.metadata);
    }
    for (const std::string& local : file.tensors) {
      TensorInfo tensor = Impl::InfoOf(by_local.at(local));
      tensor.name = local;
      info.tensors.push_back(std::move(tensor));
    }
  }
  return info;
}

absl::StatusOr<std::vector<ModelInfo>> TensorClient::ListModels(std::string_view prefix) {
  ASSIGN_OR_RETURN(std::vector<ModelRecord> models, impl_->directory().ListModels(prefix));
  std::vector<ModelInfo> infos;
  for (const ModelRecord& m : models) {
    ModelInfo info{.name = m.name,
                   .bytes = m.bytes,
                   .tensor_count = m.tensors,
                   .created_unix_ms = m.created_unix_ms,
                   .pinned = m.pinned};
    for (const ModelFileRecord& f : m.files) info.files.push_back(f.name);
    infos.push_back(std::move(info));
  }
  return infos;
}

absl::Status TensorClient::ExportModel(std::string_view name, const std::string& dir) {
  ASSIGN_OR_RETURN(TensorDirectory::Found found, impl_->directory().Lookup(name, true));
  const ModelRecord& model = *found.model;
  ASSIGN_OR_RETURN(auto by_local, ByLocalName(model, found.tensors));
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    return absl::InvalidArgumentError(absl::StrFormat("mkdir %s: %s", dir, error.message()));
  for (const ModelFileRecord& file : model.files) {
    if (!PlainFileName(file.name)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("model '%s' names a file '%s' outside its folder", name, file.name));
    }
    ASSIGN_OR_RETURN(SafetensorsHeader header, HeaderOf(file, by_local));
    // Each tensor is looked up (all stripes leased, whole or not at all)
    // before its first piece is read.
    TensorRecord current;
    RETURN_IF_ERROR(WriteSafetensorsFile(
        (std::filesystem::path(dir) / file.name).string(), header,
        [&](const SafetensorsTensor& t, uint64_t offset, std::span<uint8_t> out) -> absl::Status {
          if (offset == 0) {
            ASSIGN_OR_RETURN(current, impl_->Lookup(ModelTensorName(model.name, t.name)));
          }
          return impl_->ReadRange(current, offset, out);
        }));
  }
  if (!model.index_json.empty()) {
    SafetensorsHeader index{.raw = model.index_json};
    RETURN_IF_ERROR(WriteSafetensorsFile(
        (std::filesystem::path(dir) / std::string(kSafetensorsIndexName)).string(), index,
        nullptr));
  }
  return absl::OkStatus();
}

absl::Status TensorClient::RemoveModel(std::string_view name) {
  return impl_->directory().Remove(name, /*model=*/true);
}

absl::Status TensorClient::PinModel(std::string_view name, bool unpin) {
  return impl_->directory().Pin(name, unpin);
}

}  // namespace unipool
