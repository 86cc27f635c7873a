// What clients report of their RDMA paths (ClientFabric), newest report per
// client, for `unipoolctl fabric`, the dashboard and /metrics. A client that
// stops reporting drops out after a minute. Bounded: at most 1,024 clients
// (the oldest report goes first), each report bounded by its codec.
//
// Thread safety: thread-safe (its own lock, never held with another).
#ifndef UNIPOOL_DIRECTORY_FABRIC_BOOK_H_
#define UNIPOOL_DIRECTORY_FABRIC_BOOK_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

class FabricBook {
 public:
  static constexpr size_t kMaxClients = 1024;
  static constexpr absl::Duration kKeepFor = absl::Minutes(1);

  // Keeps `report` as the newest of its (host, client).
  void Record(ClientFabric report, absl::Time now);
  // The reports younger than kKeepFor, each with its age, by host then client.
  std::vector<ClientFabric> Snapshot(absl::Time now);

 private:
  struct Entry {
    ClientFabric report;
    absl::Time received;
  };
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_FABRIC_BOOK_H_
