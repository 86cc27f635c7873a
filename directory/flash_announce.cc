// Directory: a node's announcement of the pages on its flash (FlashAnnounce,
// docs/flash.md). A node that registers without keeping its slab (it
// restarted, or this directory's catalog is fresh) lists the pages its flash
// holds, each verified by its checksum on the node. Those the catalog does
// not know become objects on flash only, read back by their next lookup as
// any demoted page; those it knows at that version gain the node's flash
// copy. Nothing in an announcement is trusted beyond these checks: a page
// that is not what it claims fails its checksum when read back, a miss.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "directory_internal.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/directory/directory.h"

namespace unipool {

absl::Status Directory::AdoptFlashPage(NodeEntry& node, const FlashPlan& page, int64_t now_ms,
                                       CatalogBatch& batch) {
  RETURN_IF_ERROR(ValidateKey(page.key));
  if (page.length == 0 || page.length > kMaxObjectBytes || page.version == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("announced page '%s' has length %u and version %u", PrintableKey(page.key),
                        page.length, page.version));
  }
  NodeId id = node.record.node_id;
  auto it = objects_.find(page.key);
  if (it != objects_.end()) {
    ObjectEntry& entry = it->second;
    if (entry.version != page.version || entry.length != page.length ||
        entry.checksum != page.checksum) {
      // The catalog's object is the truth; the node's page is never named.
      return absl::AlreadyExistsError(absl::StrFormat("'%s' is known at version %u, not %u",
                                                      PrintableKey(page.key), entry.version,
                                                      page.version));
    }
    if (std::find(entry.flash.begin(), entry.flash.end(), id) != entry.flash.end()) {
      return absl::OkStatus();
    }
    Account(entry, -1);
    entry.flash.push_back(id);
    Account(entry, +1);
    batch.PutObject(page.key, entry);
    return absl::OkStatus();
  }
  ObjectRecord record;
  record.flash = {id};
  record.length = page.length;
  record.version = page.version;
  record.checksum = page.checksum;
  record.created_unix_ms = now_ms;
  ObjectEntry& entry = objects_.Insert(page.key, record, pins_.Covers(page.key), now_ms);
  Account(entry, +1);
  // Versions stay unique: a put after this one gets a newer version.
  next_version_ = std::max(next_version_, page.version + 1);
  batch.PutObject(page.key, entry);
  return absl::OkStatus();
}

std::vector<absl::Status> Directory::AnnounceFlash(NodeId node_id,
                                                   std::span<const FlashPlan> pages) {
  std::vector<absl::Status> results(pages.size());
  ExclusiveLock lock(this);
  NodeEntry* node = nodes_.Find(node_id);
  if (node == nullptr || !node->up() || node->flash_capacity == 0) {
    std::fill(results.begin(), results.end(),
              absl::FailedPreconditionError(
                  absl::StrFormat("node %u is not registered and up with a flash tier", node_id)));
    return results;
  }
  flash_in_use_.store(true, std::memory_order_relaxed);
  CatalogBatch batch;
  int64_t now_ms = NowMs();
  uint64_t before = objects_.size();
  for (size_t i = 0; i < pages.size(); ++i) {
    results[i] = AdoptFlashPage(*node, pages[i], now_ms, batch);
  }
  if (batch.empty()) return results;
  batch.PutNextVersion(next_version_);
  // Not fsync'ed: an announcement lost with the directory's machine is made
  // again at the node's next registration.
  if (absl::Status s = catalog_->Write(batch).status(); !s.ok()) {
    LogError("cannot persist pages announced by node %u: %s", node_id, s.ToString());
  }
  LogInfo("node %u %s announced %u flash pages: %u new objects on flash", node_id,
          node->record.name, pages.size(), objects_.size() - before);
  return results;
}

}  // namespace unipool
