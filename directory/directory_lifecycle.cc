// The directory's lifecycle bookkeeping: accounting of copies and pins,
// releasing memory under leases, held extents, pins and the verification of
// readmitted slabs. Eviction is in directory_eviction.cc, drains in
// directory_drain.cc, the rest of Directory in directory.cc.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"

namespace unipool {

int64_t Directory::NowMs() const { return absl::ToUnixMillis(options_.clock()); }

void Directory::Account(const ObjectEntry& entry, int sign) {
  auto add = [sign](uint64_t& counter) {
    if (sign > 0) {
      ++counter;
    } else {
      --counter;
    }
  };
  for (const ObjectCopy& copy : CopiesOf(entry)) {
    if (Node* node = FindNode(copy.node_id)) {
      add(node->objects);
      if (entry.pinned()) add(node->pinned);
    }
  }
  if (entry.pinned()) add(pinned_objects_);
}

void Directory::SetPinned(ObjectEntry& entry, bool pinned) {
  if (entry.pinned() == pinned) return;
  Account(entry, -1);
  objects_.SetPinned(entry, pinned);
  Account(entry, +1);
}

void Directory::FreeCopy(const ObjectCopy& copy, uint64_t length) {
  if (Node* node = FindNode(copy.node_id)) node->allocator.Free(copy.offset, length);
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
  for (const HeldExtent& held : release.held) AddHeld(held);
}

void Directory::AddHeld(const HeldExtent& held) {
  if (Node* node = FindNode(held.node_id)) node->held_bytes += RoundUpToAllocation(held.length);
  held_.emplace(held.id, held);
}

void Directory::ReleaseHeld(uint64_t id) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  const HeldExtent& held = it->second;
  if (Node* node = FindNode(held.node_id)) {
    node->held_bytes -= RoundUpToAllocation(held.length);
    node->allocator.Free(held.offset, held.length);
  }
  held_.erase(it);
}

bool Directory::InRestartGrace(int64_t now_ms) const { return now_ms < restart_grace_until_ms_; }

// ---------------------------------------------------------------------- pins

absl::Status Directory::Pin(std::string_view key, bool prefix) {
  RETURN_IF_ERROR(ValidateKey(key));
  uint64_t ticket = 0;
  uint64_t pinned = 0;
  {
    ExclusiveLock lock(this);
    if (pins_.Has(key, prefix)) return absl::OkStatus();
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

// -------------------------------------------------------------- verification

std::optional<VerifyPlan> Directory::PlanVerification() {
  ExclusiveLock lock(this);
  for (auto& [id, node] : nodes_) {
    if (!node->up() || !node->unverified || node->verifying) continue;
    VerifyPlan plan;
    plan.node_id = id;
    plan.slab_id = node->record.slab_id;
    plan.address = node->record.data_address;
    // Kept until verified, in case this attempt fails and is planned again.
    plan.items = node->readmitted_copies;
    node->verifying = true;
    return plan;
  }
  return std::nullopt;
}

absl::Status Directory::DropBadCopies(const VerifyPlan& plan, std::span<const VerifyItem> bad,
                                      uint64_t& dropped, uint64_t& lost, uint64_t& ticket) {
  CatalogBatch batch;
  std::vector<VerifyItem> drops;
  for (const VerifyItem& item : bad) {
    auto it = objects_.find(item.key);
    if (it == objects_.end() || it->second.version != item.version) continue;
    std::vector<ObjectCopy> copies = CopiesOf(it->second);
    auto c = std::find(copies.begin(), copies.end(), ObjectCopy{plan.node_id, item.offset});
    if (c == copies.end()) continue;
    copies.erase(c);
    if (copies.empty()) {
      batch.DeleteObject(item.key);
    } else {
      ObjectRecord record = it->second;
      SetCopies(record, copies);
      batch.PutObject(item.key, record);
    }
    drops.push_back(item);
  }
  if (!batch.empty()) {
    absl::StatusOr<uint64_t> written = catalog_->Write(batch);
    if (!written.ok()) {
      return absl::Status(
          written.status().code(),
          absl::StrFormat("cannot persist dropped copies: %s", written.status().message()));
    }
    ticket = *written;
  }
  for (const VerifyItem& drop : drops) {
    auto it = objects_.find(drop.key);
    ObjectCopy bad_copy{plan.node_id, drop.offset};
    std::vector<ObjectCopy> copies = CopiesOf(it->second);
    copies.erase(std::find(copies.begin(), copies.end(), bad_copy));
    // The bytes are wrong: nothing is lost by reusing them at once.
    FreeCopy(bad_copy, drop.length);
    Account(it->second, -1);
    if (copies.empty()) {
      objects_.Erase(it);
      ++lost;
    } else {
      SetCopies(it->second, copies);
      Account(it->second, +1);
      copies_to_remake_.emplace_back(drop.key, drop.version);
    }
  }
  dropped = drops.size();
  return absl::OkStatus();
}

void Directory::FinishVerification(const VerifyPlan& plan, const absl::Status& result,
                                   std::span<const VerifyItem> bad) {
  uint64_t ticket = 0;
  {
    ExclusiveLock lock(this);
    Node* node = FindNode(plan.node_id);
    if (node == nullptr || node->record.slab_id != plan.slab_id || !node->verifying) return;
    node->verifying = false;
    if (!result.ok()) {
      LogWarning("cannot verify the slab of node %s yet: %s", node->record.name, result.ToString());
      return;  // planned again while the node stays unverified
    }
    uint64_t dropped = 0, lost = 0;
    if (absl::Status s = DropBadCopies(plan, bad, dropped, lost, ticket); !s.ok()) {
      LogError("%s", s.message());
      return;
    }
    node->unverified = false;
    node->readmitted_copies.clear();
    // Bad copies the catalog no longer placed there (removed, evicted, moved
    // since the readmission) are neither verified nor dropped.
    uint64_t gone = bad.size() - dropped;
    uint64_t verified = plan.items.size() - bad.size();
    std::string line = absl::StrFormat(
        "node %u %s readmitted: %u copies checked: %u verified, %u failed their checksum and "
        "were dropped (%u objects had no other copy), %u failed but were already gone",
        plan.node_id, node->record.name, plan.items.size(), verified, dropped, lost, gone);
    if (dropped == 0) {
      LogInfo("%s", line);
    } else {
      LogWarning("%s", line);
    }
  }
  if (absl::Status s = catalog_->AwaitDurable(ticket); !s.ok()) {
    LogError("cannot fsync dropped copies: %s", s.ToString());
  }
}

}  // namespace unipool
