// The systems a benchmark compares, each written once: unipool (a local
// cluster and one client per transport), Redis (Debian's redis-server on
// loopback, persistence off) behind one interface, and the set-up shared by
// every question. memcpy, the ceiling of a same-host get, is measured by
// the sweep itself.
//
// Thread safety: a System is used by several threads at once, each with
// its own thread index (Redis: one connection per thread).
#ifndef UNIPOOL_BENCH_PEERS_H_
#define UNIPOOL_BENCH_PEERS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "redis.h"
#include "unipool/client.h"
#include "unipool/tools/local_cluster.h"

ABSL_DECLARE_FLAG(std::string, transport);
ABSL_DECLARE_FLAG(std::string, peers);
ABSL_DECLARE_FLAG(absl::Duration, lease);

namespace unipool::bench {

// Every system under test moves the same pages the same way.
class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;       // "unipool", "redis"
  virtual std::string transport() const = 0;  // as used
  virtual absl::Status Put(int thread, std::span<const std::string_view> keys,
                           std::span<const std::span<const uint8_t>> values) = 0;
  virtual absl::Status Get(int thread, std::span<const std::string_view> keys,
                           std::span<const std::span<uint8_t>> buffers) = 0;
  virtual absl::Status Remove(int thread, std::span<const std::string_view> keys) = 0;
  // How many of `keys` exist (thread 0).
  virtual absl::StatusOr<int64_t> CountExisting(std::span<const std::string_view> keys) = 0;
  // Requests to the directory so far (unipool only), to show what a
  // measurement cost beyond moving bytes.
  virtual uint64_t directory_requests() const { return 0; }
  // Whether a second read of the same keys is cheaper (cached locations).
  virtual bool caches_locations() const { return false; }
};

// "unipool-shm", "unipool-tcp", ..., "redis": how a system is named in
// the KV-cache and single-vs-batch lines.
std::string Label(const System& system);

// What a benchmark runs against: the cluster, Redis when asked for, and
// which transports to measure.
class Peers {
 public:
  // Starts the cluster (pools sized for `biggest_measurement` bytes in
  // flight) and, when --peers names redis, redis-server. Fails the program
  // when either cannot start.
  explicit Peers(uint64_t biggest_measurement);
  ~Peers();  // removes the work folder

  // --transport, resolved ("all" becomes shm, tcp, and rc where it works).
  const std::vector<std::string>& transports() const { return transports_; }
  bool has_redis() const { return redis_ != nullptr; }
  // A folder for the benchmark's own files, removed with the peers.
  const std::string& work_dir() const { return work_dir_; }
  // A new client of the cluster using `transport`.
  std::unique_ptr<System> Unipool(const std::string& transport) const;
  // The options of such a client (for the SDK's other clients: tensors).
  ClientOptions Options(const std::string& transport) const;
  // A new Redis client with one connection per thread. REQUIRES: has_redis().
  std::unique_ptr<System> Redis(int threads) const;
  // Openers of a fresh client of every system: one per transport, then Redis.
  std::vector<std::function<std::unique_ptr<System>()>> Contenders() const;

 private:
  std::unique_ptr<Client> Connect(const std::string& transport, bool require) const;

  std::string work_dir_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<RedisServer> redis_;
  std::vector<std::string> transports_;
};

// Whether --peers names `peer`.
bool WithPeer(const std::string& peer);

}  // namespace unipool::bench

#endif  // UNIPOOL_BENCH_PEERS_H_
