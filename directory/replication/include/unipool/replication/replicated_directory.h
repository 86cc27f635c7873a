// One directory of a replicated pool (unipool-directory --etcd): a standby
// until elected, then the leader, until it is deposed.
//
// As a standby it keeps its catalog (--db) as a copy of the leader's
// (ReplicaStore, served on --replication-listen by ReplicaService) and does
// not listen on its client address at all, so clients and nodes given every
// directory's address reach the leader only. Once elected it closes the
// copy, opens its Directory on it (as a restart does: nodes known from the
// catalog are waited for), ships its own writes to the other directories
// (Replicator) and serves clients on --listen.
//
// A deposed leader (its lease lost, or another elected) ends the process
// (exit 1): it may hold writes no majority has, and its supervisor starts it
// again as a standby, which a snapshot brings back in line.
//
// Step-down (unipoolctl directory step-down, for upgrades): the leader stops
// serving (requests in flight finish, each on a majority; clients resend the
// rest to the next leader), waits until a standby holds its last write,
// resigns its etcd key so that standby is elected at once, and the process
// exits 0; started again, it is a standby.
//
// Thread safety: not thread-safe; main() drives it.
#ifndef UNIPOOL_REPLICATION_REPLICATED_DIRECTORY_H_
#define UNIPOOL_REPLICATION_REPLICATED_DIRECTORY_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/directory_service.h"
#include "unipool/election/etcd_client.h"
#include "unipool/election/leader_election.h"
#include "unipool/replication/replica_service.h"
#include "unipool/replication/replica_store.h"
#include "unipool/replication/replicator.h"

namespace unipool {

struct ReplicatedDirectoryOptions {
  std::string db;      // the catalog folder (--db). Required.
  std::string listen;  // HOST:PORT served to clients and nodes once leading. Required.
  // The leader key's value: how clients reach us. Default: `listen`.
  std::string advertise;
  // HOST:PORT the leader ships writes to while we are a standby. Required.
  std::string replication_listen;
  // The other directories' replication_listen addresses.
  std::vector<std::string> peers;
  // etcd client URLs. Required.
  std::vector<std::string> etcd;
  ElectionOptions election;  // pool, TTL, margins (address and callbacks are set here)
  bool allow_unreplicated = false;
  absl::Duration ack_timeout = absl::Seconds(10);
  size_t log_writes = 65536;  // ReplicatorOptions::max_log_writes
  DirectoryOptions directory;
  ServerOptions server;
  TensorCatalogOptions tensors;
  // Called on a request's thread once a step-down was accepted and
  // acknowledged, to wake main's thread (which then calls HandOver).
  std::function<void()> wake_for_step_down;
};

class ReplicatedDirectory {
 public:
  // Opens the catalog copy, serves replication and starts campaigning.
  static absl::StatusOr<std::unique_ptr<ReplicatedDirectory>> Start(
      ReplicatedDirectoryOptions options);
  ~ReplicatedDirectory();  // Stop()

  // Waits until elected (then opens the Directory and serves clients:
  // OK) or until `stop` (Cancelled).
  absl::Status LeadWhenElected(absl::Notification& stop);
  // Resigns when leading and stops everything.
  void Stop();

  // An admin asked for a step-down (and the options' wake_for_step_down
  // was called): main's thread is to call HandOver.
  bool step_down_requested() const { return step_down_requested_.load(); }
  // The handover itself (main's thread, after LeadWhenElected): stops
  // serving, lets a standby catch up (bounded), resigns, stops everything.
  // Returns how long clients had no leader serving, from the stop of
  // service to the resignation (the standby takes over from there).
  absl::Duration HandOver();

  // While leading (after LeadWhenElected): otherwise null.
  Directory* directory() { return directory_.get(); }
  DirectoryService* service() { return service_.get(); }
  Replicator* replicator() { return replicator_.get(); }
  LeaderElection* election() { return election_.get(); }
  const std::string& address() const;

 private:
  explicit ReplicatedDirectory(ReplicatedDirectoryOptions options) : options_(std::move(options)) {}
  absl::Status Lead(int64_t term);
  // A StepDown request: FailedPrecondition when no standby is in sync (a
  // handover would lose acknowledged writes) or one was accepted already.
  absl::Status AcceptStepDown();

  ReplicatedDirectoryOptions options_;
  std::unique_ptr<ReplicaStore> store_;
  std::unique_ptr<EtcdClient> etcd_;
  std::unique_ptr<LeaderElection> election_;
  std::unique_ptr<ReplicaService> replica_service_;
  absl::Notification elected_;
  std::atomic<bool> step_down_requested_{false};
  std::atomic<int64_t> elected_term_{0};
  std::unique_ptr<Replicator> replicator_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<DirectoryService> service_;
};

}  // namespace unipool

#endif  // UNIPOOL_REPLICATION_REPLICATED_DIRECTORY_H_
