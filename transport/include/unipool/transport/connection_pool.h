// Pooled connections to the directory and the nodes, reused across requests.
//
// Thread safety: thread-safe. A leased connection belongs to one thread
// until the lease ends.
#ifndef UNIPOOL_TRANSPORT_CONNECTION_POOL_H_
#define UNIPOOL_TRANSPORT_CONNECTION_POOL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/connection.h"

namespace unipool {

class ConnectionPool {
 public:
  ConnectionPool(ConnectionOptions options, int max_idle_per_address)
      : options_(std::move(options)), max_idle_(max_idle_per_address) {}

  // Sends a request to `address` on a pooled connection and returns the
  // reply (see Connection::Call). When a reused connection turns out to be
  // dead (the server restarted since it was pooled), the request is sent
  // once more on a fresh connection (`on_sent` then hears of its pieces
  // twice).
  absl::StatusOr<ReceivedFrame> Call(const std::string& address,
                                     const flatbuffers::FlatBufferBuilder& request,
                                     std::span<const std::span<const uint8_t>> payload = {},
                                     std::span<const std::span<uint8_t>> reply_sinks = {},
                                     const PayloadSent* on_sent = nullptr);

  uint64_t connections_opened() const { return opened_.load(); }
  const ConnectionOptions& options() const { return options_; }

 private:
  // An idle connection to `address`, or nullptr.
  std::unique_ptr<Connection> TakeIdle(const std::string& address);
  void GiveBack(std::unique_ptr<Connection> conn);

  const ConnectionOptions options_;
  const int max_idle_;
  std::atomic<uint64_t> opened_{0};
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_TRANSPORT_CONNECTION_POOL_H_
