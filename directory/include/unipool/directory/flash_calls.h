// The directory's requests to the flash tier of its nodes (docs/flash.md):
// FlashDemote (write memory copies to flash) and FlashPromote (read pages
// from flash into memory reserved for them), one status per page. Used by
// the lifecycle worker (demotions) and the service (promotions on lookup).
//
// Thread safety: thread-safe. Idle connections are kept per node address and
// reused; one that failed is closed.
#ifndef UNIPOOL_DIRECTORY_FLASH_CALLS_H_
#define UNIPOOL_DIRECTORY_FLASH_CALLS_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "unipool/directory/directory_types.h"

namespace unipool {

class Connection;

class FlashCalls {
 public:
  FlashCalls();
  ~FlashCalls();
  FlashCalls(const FlashCalls&) = delete;
  FlashCalls& operator=(const FlashCalls&) = delete;

  // One status per plan, in order: the node's answer, or the error reaching
  // it (Unavailable and the like).
  std::vector<absl::Status> Demote(std::span<const FlashPlan> plans) { return Call(plans, false); }
  std::vector<absl::Status> Promote(std::span<const FlashPlan> plans) { return Call(plans, true); }

 private:
  std::vector<absl::Status> Call(std::span<const FlashPlan> plans, bool promote);
  // The plans `which` (all to `address`), in one request.
  absl::StatusOr<std::vector<absl::Status>> CallNode(const std::string& address,
                                                     std::span<const FlashPlan> plans,
                                                     const std::vector<size_t>& which,
                                                     bool promote);

  absl::Mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_FLASH_CALLS_H_
