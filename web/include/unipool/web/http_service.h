// The directory's web front end (unipool-directory --http HOST:PORT):
//   /             the pool-status dashboard (web/dashboard.html, embedded)
//   /api/status   the pool as JSON (web/pool_view.h); ?history=N adds the
//                 last N seconds (at most 600) of request counts
//   /metrics      Prometheus text format
// Read-only: it changes nothing in the pool. HTTP is cpp-httplib's server
// (Debian's libcpp-httplib), on its own small thread pool.
//
// Thread safety: Start and Stop from one thread; requests are served
// concurrently (the sources must be thread-safe).
#ifndef UNIPOOL_WEB_HTTP_SERVICE_H_
#define UNIPOOL_WEB_HTTP_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "unipool/pool_types.h"

namespace httplib {
class Server;
}

namespace unipool {

class HttpService {
 public:
  // The pool as it is now, and its request counts with the last N seconds
  // of history. Both are called from the HTTP threads, concurrently.
  using StateSource = std::function<PoolState()>;
  using MetricsSource = std::function<PoolMetrics(int history_seconds)>;
  // The most history a request may ask for (the charts' span).
  static constexpr int kMaxHistorySeconds = 600;

  HttpService(StateSource state, MetricsSource metrics);
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
  const StateSource state_;
  const MetricsSource metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
};

}  // namespace unipool

#endif  // UNIPOOL_WEB_HTTP_SERVICE_H_
