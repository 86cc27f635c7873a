#include "view_registry.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"
#include "unipool/common/log.h"

namespace unipool {

ViewHold::~ViewHold() {
  registry_->Unreserve(slab_->bytes().size());
  registry_->Remove(this);
}

ViewRegistry::ViewRegistry(uint64_t max_bytes, Renew renew)
    : max_bytes_(max_bytes), renew_(std::move(renew)) {}

ViewRegistry::~ViewRegistry() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status ViewRegistry::Reserve(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (bytes > max_bytes_ - std::min(bytes_, max_bytes_)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "views of this client already hold %u bytes; %u more would pass its max_view_bytes of %u "
        "(release views first)",
        bytes_, bytes, max_bytes_));
  }
  bytes_ += bytes;
  return absl::OkStatus();
}

void ViewRegistry::Unreserve(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  bytes_ -= std::min(bytes, bytes_);
}

uint64_t ViewRegistry::held_bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

std::shared_ptr<ViewHold> ViewRegistry::Add(std::string key, const ObjectInfo& info,
                                            std::unique_ptr<SlabView> slab) {
  auto hold = std::make_shared<ViewHold>(this, std::move(key), info.version, std::move(slab));
  absl::MutexLock lock(&mu_);
  holds_.push_back(hold);
  if (info.lease > absl::ZeroDuration()) interval_ = std::min(interval_, info.lease / 3);
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  return hold;
}

void ViewRegistry::Remove(ViewHold* hold) {
  absl::MutexLock lock(&mu_);
  // Expired weak pointers (this one among them) go; the others stay.
  holds_.erase(std::remove_if(holds_.begin(), holds_.end(),
                              [](const std::weak_ptr<ViewHold>& h) { return h.expired(); }),
               holds_.end());
}

void ViewRegistry::RenewNow() {
  absl::MutexLock one_round(&renew_mu_);
  std::vector<std::shared_ptr<ViewHold>> live;
  {
    // No hold may be dropped under mu_ (its destructor takes mu_): every
    // live one is kept, the detached ones are skipped below.
    absl::MutexLock lock(&mu_);
    for (const std::weak_ptr<ViewHold>& h : holds_) {
      if (auto hold = h.lock(); hold != nullptr) live.push_back(std::move(hold));
    }
  }
  std::erase_if(live, [](const std::shared_ptr<ViewHold>& hold) { return hold->detached(); });
  if (live.empty()) return;
  std::vector<std::string_view> keys;
  for (const auto& hold : live) keys.push_back(hold->key());
  std::vector<absl::StatusOr<ObjectInfo>> found = renew_(keys);
  for (size_t i = 0; i < live.size(); ++i) {
    ViewHold& hold = *live[i];
    if (hold.stale()) continue;  // the node ended: its memory stays mapped here
    if (found[i].ok() && found[i]->version == hold.version()) continue;  // renewed
    // Removed, replaced or evicted, or the directory did not answer: the
    // old memory is the object's for what is left of the last lease (two
    // thirds of it at least); keep a copy of it.
    if (absl::Status s = hold.slab_->Detach(); !s.ok()) {
      LogError("view of '%s': %s; marked stale", hold.key(), s.message());
      hold.stale_.store(true, std::memory_order_release);
      continue;
    }
    hold.detached_.store(true, std::memory_order_release);
  }
}

void ViewRegistry::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      absl::Duration wait = interval_;
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), wait)) return;
    }
    RenewNow();
  }
}

}  // namespace unipool
