#include "unipool/directory/tensor_catalog.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

std::vector<std::string> StripeKeys(const TensorRecord& tensor) {
  std::vector<std::string> keys;
  uint64_t stripes = tensor.layout().stripes();
  keys.reserve(stripes);
  for (uint64_t i = 0; i < stripes; ++i) keys.push_back(tensor.stripe_key(i));
  return keys;
}

std::vector<std::string_view> Views(const std::vector<std::string>& keys) {
  return std::vector<std::string_view>(keys.begin(), keys.end());
}

template <typename Map>
auto RecordsWithPrefix(const Map& map, std::string_view prefix) {
  std::vector<typename Map::mapped_type> out;
  for (auto it = map.lower_bound(prefix); it != map.end() && it->first.starts_with(prefix); ++it) {
    out.push_back(it->second);
  }
  return out;
}

}  // namespace

absl::Status TensorCatalog::WriteDurably(CatalogBatch& batch) {
  Catalog& catalog = directory_->catalog();
  ASSIGN_OR_RETURN(uint64_t ticket, catalog.Write(batch));
  return catalog.AwaitDurable(ticket);
}

absl::StatusOr<std::unique_ptr<TensorCatalog>> TensorCatalog::Open(Directory* directory,
                                                                   TensorCatalogOptions options) {
  std::unique_ptr<TensorCatalog> catalog(new TensorCatalog(directory, std::move(options)));
  ASSIGN_OR_RETURN(Catalog::NamedRecords tensors, directory->catalog().LoadTensors());
  ASSIGN_OR_RETURN(Catalog::NamedRecords models, directory->catalog().LoadModels());
  absl::MutexLock lock(&catalog->mu_);
  for (const auto& [name, bytes] : tensors) {
    absl::StatusOr<TensorRecord> record = DecodeTensorRecord(bytes);
    if (!record.ok() || record->name != name) {
      return absl::DataLossError(absl::StrFormat("catalog: tensor record '%s' is damaged: %s",
                                                 PrintableKey(name), record.status().message()));
    }
    catalog->Insert(std::move(*record));
  }
  for (const auto& [name, bytes] : models) {
    absl::StatusOr<ModelRecord> record = DecodeModelRecord(bytes);
    if (!record.ok() || record->name != name) {
      return absl::DataLossError(absl::StrFormat("catalog: model record '%s' is damaged: %s",
                                                 PrintableKey(name), record.status().message()));
    }
    catalog->models_.emplace(name, std::move(*record));
  }
  LogInfo("tensors: %d tensors in %d models and alone, from the catalog", catalog->tensors_.size(),
          catalog->models_.size());
  return catalog;
}

int64_t TensorCatalog::NowMs() const { return absl::ToUnixMillis(options_.clock()); }

void TensorCatalog::Insert(TensorRecord tensor) {
  ++loads_[tensor.load_id];
  std::string name = tensor.name;
  tensors_.insert_or_assign(std::move(name), std::move(tensor));
}

absl::Status TensorCatalog::CheckPublishable(const std::vector<TensorRecord>& tensors,
                                             const std::optional<ModelRecord>& model) {
  if (model) {
    RETURN_IF_ERROR(CheckModelRecord(*model, tensors));
    if (models_.contains(model->name)) {
      return absl::AlreadyExistsError(absl::StrFormat("model '%s' exists", model->name));
    }
  }
  if (tensors.empty()) return absl::InvalidArgumentError("nothing to publish");
  absl::flat_hash_set<std::string_view> names;
  for (const TensorRecord& t : tensors) {
    RETURN_IF_ERROR(CheckTensorRecord(t));
    if (!model && !t.model.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor '%s' names model '%s' but comes without it", t.name, t.model));
    }
    if (tensors_.contains(t.name) || !names.insert(t.name).second) {
      return absl::AlreadyExistsError(absl::StrFormat("tensor '%s' exists", t.name));
    }
    if (loads_.contains(t.load_id)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor '%s': load %016x was published before", t.name, t.load_id));
    }
    std::vector<std::string> keys = StripeKeys(t);
    std::vector<bool> exists = directory_->Exists(Views(keys));
    for (size_t i = 0; i < exists.size(); ++i) {
      if (!exists[i]) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "tensor '%s': stripe %d is not in the pool (never put, or evicted since)", t.name, i));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TensorCatalog::Publish(std::vector<TensorRecord> tensors,
                                    std::optional<ModelRecord> model) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckPublishable(tensors, model));
  int64_t now = NowMs();
  // Pinned before the records exist: a crash in between leaves pinned
  // orphans, which the orphan sweep unpins and removes.
  if (model && model->pinned) {
    RETURN_IF_ERROR(directory_->Pin(StripeKeyPrefix(model->load_id), /*prefix=*/true));
  }
  CatalogBatch batch;
  for (TensorRecord& t : tensors) {
    t.created_unix_ms = now;
    batch.PutTensor(t.name, EncodeTensorRecord(t));
  }
  if (model) {
    model->created_unix_ms = now;
    batch.PutModel(model->name, EncodeModelRecord(*model));
  }
  RETURN_IF_ERROR(WriteDurably(batch));
  uint64_t bytes = 0;
  for (TensorRecord& t : tensors) {
    bytes += t.length;
    Insert(std::move(t));
  }
  if (model) {
    LogInfo("tensors: published model '%s': %d tensors, %d bytes%s", model->name, tensors.size(),
            bytes, model->pinned ? ", pinned" : "");
    std::string name = model->name;
    models_.emplace(std::move(name), std::move(*model));
  } else {
    LogInfo("tensors: published %d tensors, %d bytes", tensors.size(), bytes);
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorLookupResult> TensorCatalog::LookupTensor(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrFormat("tensor '%s' not found", PrintableKey(name)));
  }
  TensorLookupResult result{.record = it->second};
  std::vector<std::string> keys = StripeKeys(result.record);
  std::vector<absl::StatusOr<ObjectInfo>> locations = directory_->Lookup(Views(keys));
  for (size_t i = 0; i < locations.size(); ++i) {
    if (!locations[i].ok()) {
      std::string why =
          absl::StrFormat("stripe %d is gone (evicted, or its node lost its memory)", i);
      RETURN_IF_ERROR(DropWhole(result.record, why));
      return absl::NotFoundError(absl::StrFormat(
          "tensor '%s' not found: %s, so it was removed whole", PrintableKey(name), why));
    }
    StripeCopiesInfo stripe{.checksum = locations[i]->checksum};
    for (const CopyLocation& copy : locations[i]->copies) {
      stripe.node_ids.push_back(copy.node_id);
      stripe.nodes_up.push_back(copy.node_up);
    }
    if (std::find(stripe.nodes_up.begin(), stripe.nodes_up.end(), true) == stripe.nodes_up.end()) {
      return absl::UnavailableError(absl::StrFormat(
          "tensor '%s': stripe %d has no copy on a live node", PrintableKey(name), i));
    }
    result.stripes.push_back(std::move(stripe));
  }
  return result;
}

absl::StatusOr<ModelLookupResult> TensorCatalog::LookupModel(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrFormat("model '%s' not found", PrintableKey(name)));
  }
  ModelLookupResult result{.model = it->second};
  for (const ModelFileRecord& file : result.model.files) {
    for (const std::string& local : file.tensors) {
      auto t = tensors_.find(ModelTensorName(name, local));
      if (t == tensors_.end()) {
        return absl::InternalError(
            absl::StrFormat("model '%s': tensor '%s' has no record", PrintableKey(name), local));
      }
      result.tensors.push_back(t->second);
    }
  }
  return result;
}

std::vector<TensorRecord> TensorCatalog::ListTensors(std::string_view prefix) {
  absl::MutexLock lock(&mu_);
  return RecordsWithPrefix(tensors_, prefix);
}

std::vector<ModelRecord> TensorCatalog::ListModels(std::string_view prefix) {
  absl::MutexLock lock(&mu_);
  return RecordsWithPrefix(models_, prefix);
}

absl::Status TensorCatalog::RemoveTensor(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrFormat("tensor '%s' not found", PrintableKey(name)));
  }
  if (!it->second.model.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("tensor '%s' belongs to model '%s': remove the model", PrintableKey(name),
                        it->second.model));
  }
  return RemoveRecords({it->second}, std::nullopt);
}

absl::Status TensorCatalog::RemoveModel(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrFormat("model '%s' not found", PrintableKey(name)));
  }
  std::vector<TensorRecord> tensors;
  for (const auto& [tensor_name, tensor] : tensors_) {
    if (tensor.model == name) tensors.push_back(tensor);
  }
  return RemoveRecords(std::move(tensors), it->second);
}

absl::Status TensorCatalog::DropWhole(const TensorRecord& tensor, std::string_view why) {
  std::vector<TensorRecord> tensors;
  std::optional<ModelRecord> model;
  if (tensor.model.empty()) {
    tensors.push_back(tensor);
  } else {
    if (auto it = models_.find(tensor.model); it != models_.end()) model = it->second;
    for (const auto& [name, t] : tensors_) {
      if (t.model == tensor.model) tensors.push_back(t);
    }
  }
  LogWarning("tensors: tensor '%s' %s: removing %s whole (%d tensors)", PrintableKey(tensor.name),
             why, model ? "model '" + PrintableKey(model->name) + "'" : "it", tensors.size());
  return RemoveRecords(std::move(tensors), std::move(model));
}

// Records go first (one catalog write: the tensors vanish at once), then
// the pin and the stripes; a crash in between leaves orphans for the sweep.
absl::Status TensorCatalog::RemoveRecords(std::vector<TensorRecord> tensors,
                                          std::optional<ModelRecord> model) {
  CatalogBatch batch;
  for (const TensorRecord& t : tensors) batch.DeleteTensor(t.name);
  if (model) batch.DeleteModel(model->name);
  RETURN_IF_ERROR(WriteDurably(batch));
  std::vector<std::string> keys;
  for (const TensorRecord& t : tensors) {
    tensors_.erase(t.name);
    if (--loads_[t.load_id] == 0) loads_.erase(t.load_id);
    std::vector<std::string> more = StripeKeys(t);
    keys.insert(keys.end(), more.begin(), more.end());
  }
  if (model) {
    models_.erase(model->name);
    if (model->pinned) (void)directory_->Unpin(StripeKeyPrefix(model->load_id), true);
  }
  std::vector<absl::Status> removed = directory_->Remove(Views(keys));
  size_t count = std::count_if(removed.begin(), removed.end(), [](auto& s) { return s.ok(); });
  LogInfo("tensors: removed %d tensors%s, %d of their %d stripes", tensors.size(),
          model ? " of model '" + PrintableKey(model->name) + "'" : "", count, keys.size());
  return absl::OkStatus();
}

absl::Status TensorCatalog::PinModel(std::string_view name, bool unpin) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrFormat("model '%s' not found", PrintableKey(name)));
  }
  ModelRecord& model = it->second;
  if (model.pinned == !unpin) return absl::OkStatus();
  std::string prefix = StripeKeyPrefix(model.load_id);
  absl::Status pinned = unpin ? directory_->Unpin(prefix, true) : directory_->Pin(prefix, true);
  if (!pinned.ok() && !absl::IsNotFound(pinned)) return pinned;
  ModelRecord updated = model;
  updated.pinned = !unpin;
  CatalogBatch batch;
  batch.PutModel(updated.name, EncodeModelRecord(updated));
  RETURN_IF_ERROR(WriteDurably(batch));
  model = std::move(updated);
  LogInfo("tensors: model '%s' %s", PrintableKey(name), unpin ? "unpinned" : "pinned");
  return absl::OkStatus();
}

void TensorCatalog::Sweep() {
  absl::MutexLock lock(&mu_);
  int64_t now = NowMs();
  if (now >= next_check_ms_) {
    next_check_ms_ = now + absl::ToInt64Milliseconds(options_.check_interval);
    DropIncomplete();
  }
  if (now >= next_orphan_scan_ms_) {
    next_orphan_scan_ms_ = now + absl::ToInt64Milliseconds(options_.orphan_timeout / 4);
    RemoveOrphans();
  }
}

void TensorCatalog::DropIncomplete() {
  std::vector<std::pair<TensorRecord, uint64_t>> incomplete;
  for (const auto& [name, tensor] : tensors_) {
    std::vector<std::string> keys = StripeKeys(tensor);
    std::vector<bool> known = directory_->Known(Views(keys));
    auto gone = std::find(known.begin(), known.end(), false);
    if (gone != known.end()) incomplete.emplace_back(tensor, gone - known.begin());
  }
  for (const auto& [tensor, stripe] : incomplete) {
    if (!tensors_.contains(tensor.name)) continue;  // went with its model already
    std::string why =
        absl::StrFormat("lost stripe %d (evicted, or its node lost its memory)", stripe);
    if (absl::Status s = DropWhole(tensor, why); !s.ok()) {
      LogError("tensors: cannot remove tensor '%s': %s", PrintableKey(tensor.name), s.message());
    }
  }
}

// Stripes of loads no record names, whose newest stripe is older than the
// orphan timeout: the load died; free its memory.
void TensorCatalog::RemoveOrphans() {
  int64_t quiet_before = NowMs() - absl::ToInt64Milliseconds(options_.orphan_timeout);
  absl::flat_hash_map<uint64_t, std::pair<int64_t, std::vector<std::string>>> orphans;
  std::string after;
  for (bool more = true; more;) {
    ListResult page = directory_->List(kStripeKeyPrefix, after, kMaxBatchItems);
    more = page.more && !page.entries.empty();
    for (ListEntry& object : page.entries) {
      after = object.key;
      std::optional<uint64_t> load = LoadIdOfStripeKey(object.key);
      if (!load || loads_.contains(*load)) continue;
      auto& [newest, keys] = orphans[*load];
      newest = std::max(newest, object.created_unix_ms);
      keys.push_back(std::move(object.key));
    }
  }
  for (auto& [load, orphan] : orphans) {
    auto& [newest, keys] = orphan;
    if (newest >= quiet_before) continue;  // maybe still loading
    (void)directory_->Unpin(StripeKeyPrefix(load), true);
    std::vector<absl::Status> removed = directory_->Remove(Views(keys));
    size_t count = std::count_if(removed.begin(), removed.end(), [](auto& s) { return s.ok(); });
    LogInfo("tensors: removed %d of %d orphaned stripes of unpublished load %016x", count,
            keys.size(), load);
  }
}

}  // namespace unipool
