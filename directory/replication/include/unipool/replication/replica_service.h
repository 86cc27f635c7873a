// A standby directory's server, on its --replication-listen address: takes
// the leader's Replicate requests into its ReplicaStore, and answers every
// other request with Unavailable "not the leader; the leader is HOST:PORT",
// so a client or node given this address by mistake is told where to go.
// (Clients and nodes are given the directories' --listen addresses, on
// which only the leader listens.)
//
// Only a peer proving the cluster key (or anyone, on a pool without a key)
// may replicate: a token holder is refused.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_REPLICATION_REPLICA_SERVICE_H_
#define UNIPOOL_REPLICATION_REPLICA_SERVICE_H_

#include <functional>
#include <string>

#include "unipool/common/server.h"
#include "unipool/replication/replica_store.h"

namespace unipool {

// The largest batch a leader ships in one request (a snapshot's chunks are
// far smaller; a commit group of kMaxBatchItems keys fits many times).
inline constexpr uint64_t kMaxReplicatedBatchBytes = 256ull << 20;

class ReplicaService : public FrameHandler {
 public:
  // `store` must outlive the service. `leader` says who leads, as the
  // election last read it ("" when no one is known). `address` is this
  // directory's client address, named in every reply for the leader's
  // status pages.
  ReplicaService(ReplicaStore* store, std::function<std::string()> leader, std::string address,
                 ServerOptions options);
  ~ReplicaService() override { Stop(); }

  absl::Status Start(const std::string& listen_address) { return server_.Start(listen_address); }
  void Stop() { server_.Stop(); }
  const std::string& address() const { return server_.address(); }

  absl::Status Handle(ServerConnection& conn, const wire::Message& request) override;

 private:
  absl::Status RefuseNotLeader(ServerConnection& conn);
  absl::Status HandleReplicate(ServerConnection& conn, const wire::Replicate& request);

  ReplicaStore* const store_;
  const std::function<std::string()> leader_;
  const std::string address_;
  FrameServer server_;
};

}  // namespace unipool

#endif  // UNIPOOL_REPLICATION_REPLICA_SERVICE_H_
