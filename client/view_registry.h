// The views a client holds (unipool/view.h): their bytes against the
// client's bound, and a thread that renews their keys' read leases and
// detaches the views whose key went away or whose node ended.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_CLIENT_VIEW_REGISTRY_H_
#define UNIPOOL_CLIENT_VIEW_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"
#include "unipool/shm/shm_node_io.h"

namespace unipool {

class ViewRegistry;

// One view's state, shared by the PageView and the registry's renewals.
class ViewHold {
 public:
  ViewHold(ViewRegistry* registry, std::string key, uint64_t version,
           std::unique_ptr<SlabView> slab)
      : registry_(registry), key_(std::move(key)), version_(version), slab_(std::move(slab)) {}
  ~ViewHold();

  std::span<const uint8_t> bytes() const { return slab_->bytes(); }
  const std::string& key() const { return key_; }
  uint64_t version() const { return version_; }
  bool stale() const { return stale_.load(std::memory_order_acquire) || !slab_->node_alive(); }
  bool detached() const { return detached_.load(std::memory_order_acquire); }

 private:
  friend class ViewRegistry;
  ViewRegistry* const registry_;
  const std::string key_;
  const uint64_t version_;
  const std::unique_ptr<SlabView> slab_;
  std::atomic<bool> stale_{false}, detached_{false};
};

class ViewRegistry {
 public:
  // Looks keys up again (leasing them for another `lease`); one result per key.
  using Renew = std::function<std::vector<absl::StatusOr<ObjectInfo>>(
      std::span<const std::string_view> keys)>;
  ViewRegistry(uint64_t max_bytes, Renew renew);
  // Ends the renewals. REQUIRES: no view left (they point here).
  ~ViewRegistry();

  // Counts `bytes` against the bound: ResourceExhausted when they do not fit.
  absl::Status Reserve(uint64_t bytes);
  void Unreserve(uint64_t bytes);
  // Takes a view (its bytes reserved) into the renewals, whose interval is a
  // third of its lease (info.lease) or shorter.
  std::shared_ptr<ViewHold> Add(std::string key, const ObjectInfo& info,
                                std::unique_ptr<SlabView> slab);
  uint64_t held_bytes() const;

  // One round of renewals at once (also what the thread runs).
  void RenewNow();

 private:
  friend class ViewHold;
  void Remove(ViewHold* hold);
  void Run();

  const uint64_t max_bytes_;
  const Renew renew_;
  mutable absl::Mutex mu_;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::weak_ptr<ViewHold>> holds_ ABSL_GUARDED_BY(mu_);
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(3);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;    // started with the first view
  absl::Mutex renew_mu_;  // one round at a time
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_VIEW_REGISTRY_H_
