// Directory: the bookkeeping of copies and pins, memory released under
// leases (held extents), and pins.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {

int64_t Directory::NowMs() const { return absl::ToUnixMillis(options_.clock()); }

bool Directory::InRestartGrace(int64_t now_ms) const { return now_ms < restart_grace_until_ms_; }

Directory::Release Directory::PlanPendingRelease(const PendingPut& pending, CatalogBatch& batch) {
  // Aborted, rejected or expired: its writes end now (the memory is held
  // until its capabilities expire all the same).
  QueueRevocation("", pending.version, CopiesOf(pending), pending.length, pending.deadline_unix_ms);
  return PlanRelease(CopiesOf(pending), pending.length,
                     hold_.WriteCapabilityEnd(pending.deadline_unix_ms), batch);
}

void Directory::Account(const ObjectEntry& entry, int sign) {
  auto add = [sign](uint64_t& counter) {
    if (sign > 0) {
      ++counter;
    } else {
      --counter;
    }
  };
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    if (NodeEntry* node = nodes_.Find(copy.node_id)) {
      add(node->objects);
      if (entry.pinned()) add(node->pinned);
    }
  }
  for (NodeId id : entry.flash) {
    if (NodeEntry* node = nodes_.Find(id)) {
      add(node->flash.objects);
      node->flash.bytes = sign > 0 ? node->flash.bytes + entry.length
                                   : node->flash.bytes - std::min(node->flash.bytes, entry.length);
    }
  }
  if (entry.pinned()) add(pinned_objects_);
  tenants_.Account(entry.key(), RoundUpToAllocation(entry.length) * CopiesOf(entry).size(),
                   entry.pinned(), sign);
}

void Directory::SetPinned(ObjectEntry& entry, bool pinned) {
  if (entry.pinned() == pinned) return;
  Account(entry, -1);
  objects_.SetPinned(entry, pinned);
  Account(entry, +1);
}

void Directory::FreeCopy(const ObjectCopy& copy, uint64_t length) {
  if (NodeEntry* node = nodes_.Find(copy.node_id)) node->allocator.Free(copy.offset, length);
}

Directory::Release Directory::PlanRelease(std::vector<ObjectCopy> copies, uint64_t length,
                                          int64_t lease_until_unix_ms, CatalogBatch& batch) {
  Release release;
  release.copies = std::move(copies);
  release.length = length;
  if (lease_until_unix_ms > NowMs()) {
    for (const ObjectCopy& copy : release.copies) {
      HeldExtent held{next_version_++, copy.node_id, copy.offset, length, lease_until_unix_ms};
      batch.PutHeld(held);
      release.held.push_back(held);
    }
    batch.PutNextVersion(next_version_);
  }
  return release;
}

void Directory::ApplyRelease(const Release& release) {
  if (release.held.empty()) {
    for (const ObjectCopy& copy : release.copies) FreeCopy(copy, release.length);
    return;
  }
  for (const HeldExtent& held : release.held) held_.Add(held, nodes_);
}

absl::Status Directory::Pin(std::string_view key, bool prefix) {
  RETURN_IF_ERROR(ValidateKey(key));
  uint64_t ticket = 0;
  uint64_t pinned = 0;
  {
    ExclusiveLock lock(this);
    if (pins_.Has(key, prefix)) return absl::OkStatus();
    RETURN_IF_ERROR(CheckPinQuotas(key, prefix));
    CatalogBatch batch;
    batch.PutPin({std::string(key), prefix});
    ASSIGN_OR_RETURN(ticket, catalog_->Write(batch));
    pins_.Add(key, prefix);
    if (!prefix) {
      if (auto it = objects_.find(key); it != objects_.end()) {
        SetPinned(it->second, true);
        pinned = 1;
      }
    } else {
      for (auto& [k, entry] : objects_) {
        if (KeyStartsWith(k, key) && !entry.pinned()) {
          SetPinned(entry, true);
          ++pinned;
        }
      }
    }
  }
  RETURN_IF_ERROR(catalog_->AwaitDurable(ticket));
  LogInfo("pinned %s '%s' (%u objects now pinned by it)", prefix ? "prefix" : "key",
          PrintableKey(key), pinned);
  return absl::OkStatus();
}

absl::Status Directory::Unpin(std::string_view key, bool prefix) {
  RETURN_IF_ERROR(ValidateKey(key));
  uint64_t ticket = 0;
  {
    ExclusiveLock lock(this);
    if (!pins_.Has(key, prefix)) {
      return absl::NotFoundError(absl::StrFormat("there is no %s pin on '%s'",
                                                 prefix ? "prefix" : "key", PrintableKey(key)));
    }
    CatalogBatch batch;
    batch.DeletePin({std::string(key), prefix});
    ASSIGN_OR_RETURN(ticket, catalog_->Write(batch));
    pins_.Remove(key, prefix);
    // Other pins may still cover some of the objects.
    if (!prefix) {
      if (auto it = objects_.find(key); it != objects_.end()) {
        SetPinned(it->second, pins_.Covers(key));
      }
    } else {
      for (auto& [k, entry] : objects_) {
        if (entry.pinned() && KeyStartsWith(k, key)) SetPinned(entry, pins_.Covers(k));
      }
    }
  }
  RETURN_IF_ERROR(catalog_->AwaitDurable(ticket));
  LogInfo("unpinned %s '%s'", prefix ? "prefix" : "key", PrintableKey(key));
  return absl::OkStatus();
}

}  // namespace unipool
