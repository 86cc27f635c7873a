// Tells the directory which pages the node's flash holds, after a
// registration that did not keep the node's slab: the node restarted (its
// memory copies are gone, its flash pages are not), or the directory's
// catalog is new (it lost the pool's objects). Each page is read back and
// verified by its checksum before it is announced; a page that fails is
// dropped by the store (counted as a bad page and logged there) and not
// announced. Pages go in batches of at most kPagesPerBatch (and about
// kBytesPerBatch of reads), on a connection and a thread of its own, so
// heartbeats never wait for it. One line is logged per announcement.
//
// Thread safety: Announce may be called from any thread; it is not
// reentrant with itself (the directory link calls it).
#ifndef UNIPOOL_NODE_FLASH_ANNOUNCER_H_
#define UNIPOOL_NODE_FLASH_ANNOUNCER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "unipool/node/node_flash.h"

namespace unipool {

class Connection;

class FlashAnnouncer {
 public:
  static constexpr size_t kPagesPerBatch = 512;
  static constexpr uint64_t kBytesPerBatch = 32ull << 20;

  // `flash` must outlive this object. `name` is the node's (its peer name).
  FlashAnnouncer(NodeFlash* flash, std::string directory_address, std::string name)
      : flash_(flash), directory_address_(std::move(directory_address)), name_(std::move(name)) {}
  // Stops an announcement under way.
  ~FlashAnnouncer();
  FlashAnnouncer(const FlashAnnouncer&) = delete;
  FlashAnnouncer& operator=(const FlashAnnouncer&) = delete;

  // Announces every page as node `node_id`, in the background; one under way
  // is stopped first (the node registered again).
  void Announce(uint32_t node_id);

  // Totals of the last announcement (tests read them through the log).
  struct Tally {
    uint64_t listed = 0;     // pages the store listed
    uint64_t announced = 0;  // verified and taken by the directory
    uint64_t bad = 0;        // failed their checksum (or read): dropped
    uint64_t refused = 0;    // the directory knows another version, or refused them
  };

 private:
  void Run(uint32_t node_id);
  void Stop();
  // Verifies `pages` (a batch) and announces those intact.
  absl::Status AnnounceBatch(Connection& conn, uint32_t node_id,
                             std::span<const flash::FlashEntry> pages, Tally& tally);

  NodeFlash* const flash_;
  const std::string directory_address_;
  const std::string name_;
  std::atomic<bool> cancel_{false};
  std::thread thread_;
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_FLASH_ANNOUNCER_H_
