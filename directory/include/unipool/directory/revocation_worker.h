// The directory's thread that ends write capabilities at the nodes: it takes
// the puts the directory queued at commit or abort (revocation_queue.h),
// sends each node its capabilities in one RevokeWrites, and reports to the
// directory the puts whose every capability ended (Directory::
// FinishRevocations). A node that cannot be reached or refuses is not asked
// again: its capabilities expire, and the directory holds their memory
// until then.
//
// Thread safety: Start and Stop from one thread; runs its own thread.
#ifndef UNIPOOL_DIRECTORY_REVOCATION_WORKER_H_
#define UNIPOOL_DIRECTORY_REVOCATION_WORKER_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "unipool/directory/directory.h"

namespace unipool {

class Connection;

class RevocationWorker {
 public:
  // `directory` must outlive the worker.
  explicit RevocationWorker(Directory* directory);
  ~RevocationWorker();
  RevocationWorker(const RevocationWorker&) = delete;
  RevocationWorker& operator=(const RevocationWorker&) = delete;

  void Start();
  void Stop();

 private:
  void Run();
  // Whether each plan's capabilities all ended at their nodes.
  std::vector<bool> Revoke(std::span<const RevokePlan> plans);
  absl::Status CallNode(const std::string& address, std::span<const Capability> capabilities);

  Directory* const directory_;
  // One connection per node address, reused (worker thread only).
  std::map<std::string, std::unique_ptr<Connection>> connections_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_REVOCATION_WORKER_H_
