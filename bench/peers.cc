#include "peers.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "measure.h"
#include "unipool/common/auth.h"
#include "unipool/common/status_macros.h"
#include "unipool/common/tls_files.h"
#include "unipool/common/units.h"

ABSL_FLAG(std::string, transport, "auto",
          "tcp, shm, rc, uc, auto (the client's own choice), all (shm, tcp and rc when this "
          "machine has an RDMA device), or a comma-separated list");
ABSL_FLAG(std::string, peers, "",
          "baselines in the same run: redis, memcpy, checksum (comma-separated)");
ABSL_FLAG(std::string, redis_server, "redis-server", "the redis-server binary");
ABSL_FLAG(int, nodes, 1, "pool nodes");
ABSL_FLAG(std::string, pool_size, "256MiB",
          "slab of each node (grown to what the largest measurement needs)");
ABSL_FLAG(std::vector<std::string>, node_flags, {},
          "extra flags for every pool node, comma-separated (e.g. --prefault=false in a small "
          "VM; figures are then not at the defaults: say so where they are reported)");
ABSL_FLAG(std::string, directory_sync, "everysec",
          "the directory's --sync: everysec (its default: commits in its log before the reply, "
          "fsync'ed every 100 ms) or always (fsync'ed before the reply, group commit)");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(2),
          "the directory's --lease: how long a get may use a cached location (and a removed "
          "page stays held); timed get rounds that outlast it look their keys up again");
ABSL_FLAG(bool, cluster_key, false,
          "the cluster has a cluster key (made for the run) and clients prove it: what the "
          "handshake and the data path's capabilities cost");
ABSL_FLAG(int, copy_threads, 0,
          "threads copying one same-host batch (ClientOptions::copy_threads; 0: the client's "
          "default, 1: the calling thread only)");
ABSL_FLAG(bool, tls, false,
          "the cluster serves TLS 1.3 on every TCP port (a CA and certificate made for the run) "
          "and clients speak it: what TLS costs (shm and RDMA are not affected)");

namespace unipool::bench {
namespace {

// Keys per DEL command when removing.
constexpr size_t kRedisDeleteBatch = 1024;

class UnipoolSystem : public System {
 public:
  UnipoolSystem(std::unique_ptr<Client> client, std::string asked)
      : client_(std::move(client)), asked_(std::move(asked)) {}
  std::string name() const override { return "unipool"; }
  std::string transport() const override {
    ClientStats s = client_->stats();
    return s.node_requests == 0 ? asked_ : s.transport;
  }
  absl::Status Put(int, std::span<const std::string_view> keys,
                   std::span<const std::span<const uint8_t>> values) override {
    for (const absl::Status& s : client_->BatchPut(keys, values)) RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }
  absl::Status Get(int, std::span<const std::string_view> keys,
                   std::span<const std::span<uint8_t>> buffers) override {
    for (const auto& got : client_->BatchGet(keys, buffers)) RETURN_IF_ERROR(got.status());
    return absl::OkStatus();
  }
  absl::Status Remove(int, std::span<const std::string_view> keys) override {
    for (const absl::Status& s : client_->BatchRemove(keys)) RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountExisting(std::span<const std::string_view> keys) override {
    int64_t found = 0;
    for (const absl::StatusOr<bool>& exists : client_->BatchExists(keys)) {
      RETURN_IF_ERROR(exists.status());
      found += *exists ? 1 : 0;
    }
    return found;
  }
  uint64_t directory_requests() const override { return client_->stats().directory_requests; }
  bool caches_locations() const override { return true; }

 private:
  std::unique_ptr<Client> client_;
  std::string asked_;
};

class RedisSystem : public System {
 public:
  RedisSystem(const std::string& address, int threads) {
    for (int t = 0; t < threads; ++t) {
      connections_.push_back(OrDie(RedisConnection::Open(address), "redis connect"));
    }
  }
  std::string name() const override { return "redis"; }
  std::string transport() const override { return "tcp"; }
  absl::Status Put(int t, std::span<const std::string_view> keys,
                   std::span<const std::span<const uint8_t>> values) override {
    return connections_[t]->BatchSet(keys, values);
  }
  absl::Status Get(int t, std::span<const std::string_view> keys,
                   std::span<const std::span<uint8_t>> buffers) override {
    return connections_[t]->BatchGet(keys, buffers);
  }
  absl::Status Remove(int t, std::span<const std::string_view> keys) override {
    for (size_t i = 0; i < keys.size(); i += kRedisDeleteBatch) {
      RETURN_IF_ERROR(connections_[t]->Delete(
          keys.subspan(i, std::min<size_t>(kRedisDeleteBatch, keys.size() - i))));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountExisting(std::span<const std::string_view> keys) override {
    return connections_[0]->Exists(keys);
  }

 private:
  std::vector<std::unique_ptr<RedisConnection>> connections_;
};

}  // namespace

std::string Label(const System& system) {
  return system.name() == "unipool" ? "unipool-" + system.transport() : system.name();
}

bool WithPeer(const std::string& peer) {
  std::vector<std::string> peers = SplitList(absl::GetFlag(FLAGS_peers));
  return std::find(peers.begin(), peers.end(), peer) != peers.end();
}

Peers::Peers(uint64_t biggest_measurement) {
  work_dir_ =
      (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-bench-%d", getpid()))
          .string();
  LocalClusterOptions options;
  options.nodes = absl::GetFlag(FLAGS_nodes);
  uint64_t pool = OrDie(ParseSize(absl::GetFlag(FLAGS_pool_size)), "--pool-size");
  // Removed pages stay held while their read lease lasts (--lease), and
  // the pool evicts above 90% full: room for several measurements at once.
  // Nodes fault their slab in at start (--prefault), so this is start time.
  uint64_t needed = (8 * biggest_measurement + (256 << 20)) / options.nodes;
  options.pool_size = std::max(pool, needed);
  options.node_timeout = absl::Seconds(15);
  options.work_dir = work_dir_;
  options.directory_flags.push_back("--sync=" + absl::GetFlag(FLAGS_directory_sync));
  options.directory_flags.push_back("--lease=" + absl::FormatDuration(absl::GetFlag(FLAGS_lease)));
  options.node_flags = absl::GetFlag(FLAGS_node_flags);
  if (absl::GetFlag(FLAGS_cluster_key)) {
    options.key_file = work_dir_ + "/cluster.key";
    std::filesystem::create_directories(work_dir_);
    Credential key = OrDie(NewClusterKey(), "making a cluster key");
    OkOrDie(WriteCredentialFile(options.key_file, key), "writing the cluster key");
  }
  if (absl::GetFlag(FLAGS_tls)) {
    options.tls_dir = work_dir_ + "/tls";
    OkOrDie(WriteTlsFiles(options.tls_dir, {"127.0.0.1", "localhost"}), "making the TLS files");
  }
  cluster_ = OrDie(LocalCluster::Start(options), "starting the cluster");
  std::fprintf(stderr, "unipool-bench: %d node(s) of %s, directory --sync=%s%s%s\n", options.nodes,
               FormatSize(options.pool_size).c_str(), absl::GetFlag(FLAGS_directory_sync).c_str(),
               absl::GetFlag(FLAGS_cluster_key) ? ", with a cluster key" : "",
               absl::GetFlag(FLAGS_tls) ? ", TLS on every TCP connection" : "");
  if (WithPeer("redis")) {
    redis_ = OrDie(RedisServer::Start(absl::GetFlag(FLAGS_redis_server), work_dir_ + "/redis"),
                   "starting redis-server");
    absl::PrintF("peer redis version=%s address=%s persistence=off\n", redis_->version().c_str(),
                 redis_->address().c_str());
  }
  for (const std::string& t : SplitList(absl::GetFlag(FLAGS_transport))) {
    if (t == "all") {
      transports_.push_back("shm");
      transports_.push_back("tcp");
      if (Connect("rc", false) != nullptr) transports_.push_back("rc");
    } else if (t == "tcp" || t == "shm" || t == "rc" || t == "uc" || t == "auto") {
      transports_.push_back(t);
    } else {
      Fail(absl::StrFormat("--transport: unknown '%s'", t));
    }
  }
}

Peers::~Peers() {
  redis_.reset();
  cluster_.reset();
  std::filesystem::remove_all(work_dir_);
}

ClientOptions Peers::Options(const std::string& transport) const {
  ClientOptions options;
  options.directory = cluster_->directory_address();
  options.name = "unipool-bench";
  options.copy_threads = absl::GetFlag(FLAGS_copy_threads);
  options.io_timeout = absl::Seconds(120);
  options.max_idle_connections = 16;
  options.tls_ca = cluster_->tls_ca();      // empty without --tls
  options.key_file = cluster_->key_file();  // empty without --cluster-key
  if (transport == "shm") {
    options.rdma = RdmaPolicy::kOff;
    options.shm = true;
  } else if (transport == "tcp") {
    options.rdma = RdmaPolicy::kOff;
    options.shm = false;
  } else if (transport == "auto") {
    options.rdma = RdmaPolicy::kAuto;
    options.shm = true;
  } else {
    options.rdma = OrDie(ParseRdmaPolicy(transport), "--transport");  // rc, uc
    options.shm = false;
  }
  return options;
}

std::unique_ptr<Client> Peers::Connect(const std::string& transport, bool require) const {
  auto client = Client::Connect(Options(transport));
  if (!client.ok()) {
    if (require) Fail(absl::StrFormat("--transport %s: %s", transport, client.status().ToString()));
    return nullptr;
  }
  return std::move(*client);
}

std::unique_ptr<System> Peers::Unipool(const std::string& transport) const {
  return std::make_unique<UnipoolSystem>(Connect(transport, true), transport);
}

std::unique_ptr<System> Peers::Redis(int threads) const {
  return std::make_unique<RedisSystem>(redis_->address(), threads);
}

std::vector<std::function<std::unique_ptr<System>()>> Peers::Contenders() const {
  std::vector<std::function<std::unique_ptr<System>()>> out;
  for (const std::string& t : transports_) out.push_back([this, t] { return Unipool(t); });
  if (has_redis()) out.push_back([this] { return Redis(1); });
  return out;
}

}  // namespace unipool::bench
