// The directory's web front end (unipool-directory --http HOST:PORT):
//   /             the pool-status dashboard (store/dashboard.html, embedded)
//   /api/status   the pool as JSON (store/pool_view.h); ?history=N adds the
//                 last N seconds (at most 600) of request counts
//   /metrics      Prometheus text format
// Read-only: it changes nothing in the pool. HTTP is cpp-httplib's server
// (Debian's libcpp-httplib), on its own small thread pool.
//
// Thread safety: Start and Stop from one thread; requests are served
// concurrently (Directory and DirectoryMetrics are thread-safe).
#ifndef UNIPOOL_STORE_HTTP_SERVICE_H_
#define UNIPOOL_STORE_HTTP_SERVICE_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "store/directory.h"
#include "store/metrics.h"
#include "unipool/client.h"

namespace httplib {
class Server;
}

namespace unipool {

// The directory's state as the SDK's plain structs (what GetStatus and
// GetMetrics would answer), for store/pool_view.h.
PoolState ToPoolState(const PoolStatus& status);
PoolMetrics ToPoolMetrics(const DirectoryMetrics& metrics, int history_seconds);

class HttpService {
 public:
  // `directory` and `metrics` must outlive the service.
  HttpService(Directory* directory, DirectoryMetrics* metrics);
  ~HttpService();
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  // Binds HOST:PORT (port 0 picks a free one) and serves on a thread.
  // InvalidArgument for a malformed address, Unavailable when it cannot bind.
  absl::Status Start(const std::string& listen_address);
  // Stops serving and joins the thread. Idempotent.
  void Stop();
  // The bound HOST:PORT, once started.
  const std::string& address() const { return address_; }

 private:
  Directory* const directory_;
  DirectoryMetrics* const metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
};

}  // namespace unipool

#endif  // UNIPOOL_STORE_HTTP_SERVICE_H_
