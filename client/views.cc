// Client::GetView and Client::GetPrefixViews: zero-copy reads from the slabs
// of nodes on this machine (unipool/view.h). A fresh lookup leases the keys;
// each view maps its object read-only, has its checksum verified, and joins
// the view registry, which renews the lease while the view lives.
#include "absl/strings/str_format.h"
#include "client_impl.h"
#include "unipool/common/checksum.h"
#include "unipool/common/status_macros.h"
#include "unipool/view.h"
#include "view_registry.h"

namespace unipool {

std::span<const uint8_t> PageView::bytes() const {
  return hold_ == nullptr ? std::span<const uint8_t>() : hold_->bytes();
}
std::string_view PageView::key() const {
  if (hold_ == nullptr) return {};
  return hold_->key();  // not through ?: with "", which would copy it into a temporary
}
bool PageView::stale() const { return hold_ != nullptr && hold_->stale(); }
bool PageView::detached() const { return hold_ != nullptr && hold_->detached(); }

absl::StatusOr<std::shared_ptr<ViewHold>> Client::Impl::MakeView(std::string_view key,
                                                                 const ObjectInfo& info) {
  if (shm_io_ == nullptr) {
    return absl::FailedPreconditionError(
        "views need the same-host path (ClientOptions::shm, rdma auto or off)");
  }
  const CopyLocation* here = nullptr;
  for (const CopyLocation* copy : ReadOrder(info)) {
    if (copy->node_host == host_) {
      here = copy;
      break;
    }
  }
  if (here == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "no live copy of '%s' is on this machine: get it instead", PrintableKey(key)));
  }
  RETURN_IF_ERROR(views_->Reserve(info.length));
  auto slab = shm_io_->MapView(here->node_address, here->offset, info.length);
  if (slab.ok() && Checksum((*slab)->bytes()) != info.checksum) {
    checksum_failures_.fetch_add(1, std::memory_order_relaxed);
    slab = absl::DataLossError(
        absl::StrFormat("'%s' on node %s does not match its checksum (version %u)",
                        PrintableKey(key), here->node_address, info.version));
  }
  if (!slab.ok()) {
    views_->Unreserve(info.length);
    return absl::Status(
        slab.status().code(),
        absl::StrFormat("a view of '%s': %s", PrintableKey(key), slab.status().message()));
  }
  gets_.fetch_add(1, std::memory_order_relaxed);
  return views_->Add(std::string(key), info, std::move(*slab));
}

absl::StatusOr<PageView> Client::GetView(std::string_view key) {
  std::vector<absl::StatusOr<ObjectInfo>> found = impl_->LookupMany({&key, 1});
  RETURN_IF_ERROR(found[0].status());
  ASSIGN_OR_RETURN(std::shared_ptr<ViewHold> hold, impl_->MakeView(key, *found[0]));
  return PageView(std::move(hold));
}

absl::StatusOr<std::vector<PageView>> Client::GetPrefixViews(
    std::span<const std::string_view> keys) {
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> found, impl_->LookupPrefix(keys));
  std::vector<PageView> views;
  for (size_t i = 0; i < found.size(); ++i) {
    absl::StatusOr<std::shared_ptr<ViewHold>> hold = impl_->MakeView(keys[i], found[i]);
    if (!hold.ok()) {
      // The prefix ends at a key that cannot be viewed, as GetPrefix's ends
      // at one that cannot be read; an error only when it is the first.
      if (i == 0) return hold.status();
      break;
    }
    views.push_back(PageView(std::move(*hold)));
  }
  return views;
}

uint64_t Client::view_bytes() const { return impl_->view_bytes(); }

}  // namespace unipool
