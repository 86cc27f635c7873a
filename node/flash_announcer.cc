#include "unipool/node/flash_announcer.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {

FlashAnnouncer::~FlashAnnouncer() { Stop(); }

void FlashAnnouncer::Stop() {
  cancel_.store(true);
  if (thread_.joinable()) thread_.join();
  cancel_.store(false);
}

void FlashAnnouncer::Announce(uint32_t node_id) {
  Stop();
  thread_ = std::thread([this, node_id] { Run(node_id); });
}

void FlashAnnouncer::Run(uint32_t node_id) {
  absl::Time start = absl::Now();
  std::vector<flash::FlashEntry> pages = flash_->List();
  // A page still queued has no checksum yet: its demotion is recorded by
  // the directory that asked for it.
  std::erase_if(pages, [](const flash::FlashEntry& p) { return p.checksum == 0; });
  Tally tally;
  tally.listed = pages.size();
  if (pages.empty()) return;
  ConnectionOptions options;
  options.peer_name = name_;
  options.role = wire::Role::Node;
  options.io_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(directory_address_, options);
  absl::Status s = conn.status();
  size_t first = 0;
  while (s.ok() && first < pages.size() && !cancel_.load()) {
    // Up to kPagesPerBatch pages and about kBytesPerBatch of reads (one page
    // at least, whatever its size).
    size_t last = first;
    uint64_t bytes = 0;
    while (last < pages.size() && last - first < kPagesPerBatch &&
           (last == first || bytes + pages[last].length <= kBytesPerBatch)) {
      bytes += pages[last++].length;
    }
    s = AnnounceBatch(**conn, node_id,
                      std::span<const flash::FlashEntry>(pages).subspan(first, last - first),
                      tally);
    first = last;
  }
  std::string how = s.ok() ? (cancel_.load() ? "stopped (registered again)" : "done")
                           : absl::StrFormat("cut short: %s", s.message());
  LogInfo(
      "flash pages announced to directory %s as node %u: %u listed, %u announced, %u failed their "
      "checksum (dropped), %u refused; %s in %.2f s",
      directory_address_, node_id, tally.listed, tally.announced, tally.bad, tally.refused, how,
      absl::ToDoubleSeconds(absl::Now() - start));
}

absl::Status FlashAnnouncer::AnnounceBatch(Connection& conn, uint32_t node_id,
                                           std::span<const flash::FlashEntry> pages, Tally& tally) {
  uint64_t total = 0;
  for (const flash::FlashEntry& page : pages) total += page.length;
  std::vector<uint8_t> bytes(total);
  std::vector<flash::FlashRead> reads;
  reads.reserve(pages.size());
  uint64_t at = 0;
  for (const flash::FlashEntry& page : pages) {
    reads.push_back({page.key, page.version, std::span<uint8_t>(bytes).subspan(at, page.length)});
    at += page.length;
  }
  // Verified now: the store checks each page's checksum and drops (counts,
  // logs) those that fail.
  flash_->store().ReadMany(reads, flash::ReadFor::kVerify);
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::FlashItem>> items;
  for (size_t i = 0; i < pages.size(); ++i) {
    if (!reads[i].result.ok() || *reads[i].result != pages[i].length) {
      ++tally.bad;
      continue;
    }
    const flash::FlashEntry& page = pages[i];
    auto key = fbb.CreateVector(reinterpret_cast<const uint8_t*>(page.key.data()), page.key.size());
    items.push_back(
        wire::CreateFlashItem(fbb, key, page.version, /*offset=*/0, page.length, page.checksum));
  }
  if (items.empty()) return absl::OkStatus();
  size_t sent = items.size();
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreateFlashAnnounce(fbb, node_id, vec));
  ASSIGN_OR_RETURN(ReceivedFrame reply, conn.Call(fbb));
  const wire::StatusList* list = reply.message()->body_as_StatusList();
  if (list == nullptr || list->items() == nullptr || list->items()->size() != sent) {
    return absl::InternalError("unexpected reply to FlashAnnounce");
  }
  for (const wire::Status* s : *list->items()) {
    if (StatusFromWire(s).ok()) {
      ++tally.announced;
    } else {
      ++tally.refused;
    }
  }
  return absl::OkStatus();
}

}  // namespace unipool
