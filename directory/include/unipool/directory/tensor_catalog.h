// The directory's tensors and models: records naming each tensor's dtype,
// shape and stripes (ordinary objects, placed, replicated, leased, moved by
// drains and lost with nodes like any object), kept in the catalog next to
// the objects.
//
// A tensor is whole or absent:
//   Publish  makes tensors (and a model of exactly those tensors) visible in
//            one catalog write, after the client committed every stripe.
//   Lookup   looks every stripe up (leasing them all), so a reader gets the
//            whole tensor's locations at one instant; a stripe that is gone
//            (evicted, removed, its node's memory lost) makes the whole
//            tensor, and the model it belongs to, go: records first, then
//            the other stripes. A stripe only on down nodes is Unavailable
//            (the node may come back with it).
//   Sweep    does the same for tensors nobody reads, and removes stripes no
//            record names once their load went quiet (a client that died
//            mid-load; a directory restarted before the publish).
//   Pins     a pinned model's stripes are pinned (Directory::Pin on the
//            load's key prefix), so eviction never starts on it; unpinned
//            tensors are evicted like objects, and then go whole.
//
// Thread safety: thread-safe; one mutex, taken before the Directory's.
#ifndef UNIPOOL_DIRECTORY_TENSOR_CATALOG_H_
#define UNIPOOL_DIRECTORY_TENSOR_CATALOG_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "unipool/directory/directory.h"
#include "unipool/tensor/records.h"

namespace unipool {

struct TensorCatalogOptions {
  // Stripes that no record names are removed once their load's newest stripe
  // is this old. Default 2 min: a live load commits stripes every few
  // seconds (each batch must commit within the put timeout anyway).
  absl::Duration orphan_timeout = absl::Minutes(2);
  // How often every tensor's stripes are checked. Default 5 s.
  absl::Duration check_interval = absl::Seconds(5);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

struct StripeCopiesInfo {
  uint64_t checksum = 0;
  std::vector<uint32_t> node_ids;
  std::vector<bool> nodes_up;
};

struct TensorLookupResult {
  TensorRecord record;
  std::vector<StripeCopiesInfo> stripes;
};

struct ModelLookupResult {
  ModelRecord model;
  std::vector<TensorRecord> tensors;  // in file order
};

class TensorCatalog {
 public:
  // Reads the records from `directory`'s catalog. `directory` must outlive
  // the TensorCatalog.
  static absl::StatusOr<std::unique_ptr<TensorCatalog>> Open(Directory* directory,
                                                             TensorCatalogOptions options = {});

  // AlreadyExists for a name in use; FailedPrecondition when a stripe is not
  // committed and readable; InvalidArgument for records that do not check.
  // Sets created_unix_ms.
  absl::Status Publish(std::vector<TensorRecord> tensors, std::optional<ModelRecord> model);

  // NotFound when absent (or just dropped as incomplete); Unavailable when a
  // stripe has no copy on a live node.
  absl::StatusOr<TensorLookupResult> LookupTensor(std::string_view name);
  absl::StatusOr<ModelLookupResult> LookupModel(std::string_view name);

  std::vector<TensorRecord> ListTensors(std::string_view prefix);
  std::vector<ModelRecord> ListModels(std::string_view prefix);

  // A lone tensor (FailedPrecondition for a model's: remove the model).
  absl::Status RemoveTensor(std::string_view name);
  absl::Status RemoveModel(std::string_view name);
  absl::Status PinModel(std::string_view name, bool unpin);

  // Called periodically (the service's tick); does work at most every
  // check_interval (incomplete tensors) and orphan_timeout / 4 (orphans).
  void Sweep();

 private:
  TensorCatalog(Directory* directory, TensorCatalogOptions options)
      : directory_(directory), options_(std::move(options)) {}
  int64_t NowMs() const;
  // Writes `batch` and waits until it is as durable as a commit.
  absl::Status WriteDurably(CatalogBatch& batch);
  absl::Status CheckPublishable(const std::vector<TensorRecord>& tensors,
                                const std::optional<ModelRecord>& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a tensor's model (or the lone tensor): records, pin, stripes.
  absl::Status DropWhole(const TensorRecord& tensor, std::string_view why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveRecords(std::vector<TensorRecord> tensors, std::optional<ModelRecord> model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Insert(TensorRecord tensor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropIncomplete() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveOrphans() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Directory* const directory_;
  const TensorCatalogOptions options_;
  absl::Mutex mu_;
  std::map<std::string, TensorRecord, std::less<>> tensors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ModelRecord, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  // Records naming each load id (stripes of other loads are orphans).
  absl::flat_hash_map<uint64_t, int> loads_ ABSL_GUARDED_BY(mu_);
  int64_t next_check_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_orphan_scan_ms_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_TENSOR_CATALOG_H_
