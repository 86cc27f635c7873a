// The leader's half of catalog replication (issue 24): every catalog write
// (Catalog calls Stamp and Append, in order) goes into a bounded log in
// memory, and one thread per standby ships the log to it, in order, as
// Replicate requests to its --replication-listen address. A write is
// acknowledged (AwaitReplicated) once a majority of the directories have it
// (this one and, of two or three, one standby), and only while this
// directory still leads in its term.
//
// Catch-up: a standby found at a position the log still holds gets the
// writes after it; any other (behind a trimmed log, on another term's
// history, or with writes no majority had) gets a snapshot: its catalog is
// emptied, the leader's records are copied as of one moment, then the log
// after that moment.
//
// With no standby in sync, writes wait (up to ack_timeout, then fail
// Unavailable) unless allow_unreplicated, when they go on and the log says
// "unreplicated" once.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_REPLICATION_REPLICATOR_H_
#define UNIPOOL_REPLICATION_REPLICATOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/common/connection.h"
#include "unipool/directory/catalog.h"
#include "unipool/replication/position.h"

namespace unipool {

struct ReplicatorOptions {
  // Our leader term (the election's). Required.
  int64_t term = 0;
  // Our client address (--listen), sent with every request.
  std::string leader_address;
  // The standbys' --replication-listen addresses.
  std::vector<std::string> peers;
  // Where our catalog was when we were elected: a standby found exactly
  // there takes the log from its first write.
  ReplicationPosition base;
  // Write on with no standby in sync (status: unreplicated). Default false:
  // writes wait for a standby.
  bool allow_unreplicated = false;
  // How long a write waits for a majority before it fails Unavailable.
  // Default 10 s: a standby restarting or catching up is back well before.
  absl::Duration ack_timeout = absl::Seconds(10);
  // The log keeps at most this many writes and bytes; a standby further
  // behind gets a snapshot. Defaults 65536 writes, 64 MiB.
  size_t max_log_writes = 65536;
  size_t max_log_bytes = 64u << 20;
  // How this directory dials the standbys (role, key, TLS, timeouts).
  ConnectionOptions connection;
  // Our term while we may acknowledge (LeaderElection::LeaderTerm).
  std::function<std::optional<int64_t>()> leader_term;
  // Called when a standby refuses our term (a newer leader was elected), or
  // when a write finds our term over, before the write is answered: we are
  // deposed (ReplicatedDirectory ends the process).
  std::function<void(std::string_view why)> on_fenced;
};

// One standby as the leader sees it (status pages).
struct StandbyView {
  std::string address;
  bool in_sync = false;  // connected and caught up at least once since
  uint64_t acked = 0;    // the last write of our term it has
  uint64_t lag = 0;      // writes it is behind
};

class Replicator : public CatalogReplication {
 public:
  // Starts one thread per peer.
  explicit Replicator(ReplicatorOptions options);
  ~Replicator() override;  // Stop()
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // The catalog to copy snapshots from, once open. REQUIRES: it outlives
  // the replicator's Stop.
  void AttachCatalog(const Catalog* catalog);
  void Stop();

  uint64_t Stamp(rocksdb::WriteBatch& batch) override;
  void Append(uint64_t seq, std::string_view data) override;
  absl::Status AwaitReplicated(uint64_t seq) override;

  int64_t term() const { return options_.term; }
  std::vector<StandbyView> Standbys();
  // This directory and each standby (status pages): a standby that
  // answered since its last failure is kStandby, any other kUnreachable.
  void Describe(PoolState& status) override;
  // Waits up to `bound` until a standby holds the last write appended (a
  // step-down hands over to it); whether one does.
  bool AwaitStandbyCaughtUp(absl::Duration bound);
  // No standby is in sync (writes go on only with allow_unreplicated).
  bool unreplicated();

 private:
  struct Peer {
    std::string address;
    bool in_sync = false;
    uint64_t acked = 0;
    bool connected = false;      // answered since it was last lost
    ReplicationPosition at;      // where its last answer said it was
    std::string client_address;  // as its answers name it
  };
  // AwaitReplicated's wait; sets `fenced` when it failed for our term's end.
  absl::Status WaitForMajority(uint64_t seq, std::string* fenced) ABSL_LOCKS_EXCLUDED(mu_);
  void PeerLoop(size_t peer);
  // Brings one connected standby up to date and keeps it there; returns why
  // it stopped.
  absl::Status ServePeer(Connection& conn, size_t peer);
  // Where to start shipping to a standby at `at`: the next write, or
  // nothing when it needs a snapshot.
  std::optional<uint64_t> NextFor(ReplicationPosition at);
  // Empties the standby and copies the catalog; returns the next write to send.
  absl::StatusOr<uint64_t> SendSnapshot(Connection& conn, size_t peer);
  // One request to standby `peer`; its answer is noted (Heard).
  absl::StatusOr<ReplicationPosition> Send(Connection& conn, size_t peer, int kind, uint64_t seq,
                                           std::string_view data);
  void Heard(size_t peer, ReplicationPosition at, std::string_view client_address)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A standby refused our term: nothing more is acknowledged.
  void Fence(const absl::Status& refusal) ABSL_LOCKS_EXCLUDED(mu_);
  void Acked(size_t peer, uint64_t seq);
  void Lost(size_t peer, const absl::Status& why);
  bool Fenced(std::string* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ReplicatorOptions options_;
  absl::Mutex mu_;
  absl::CondVar changed_;  // a write appended, a standby acked, or stop
  std::deque<std::pair<uint64_t, std::string>> log_ ABSL_GUARDED_BY(mu_);
  size_t log_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t trimmed_through_ ABSL_GUARDED_BY(mu_) = 0;  // writes up to this left the log
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;             // the last write appended
  std::vector<Peer> peers_ ABSL_GUARDED_BY(mu_);
  std::string fenced_ ABSL_GUARDED_BY(mu_);  // why a standby refused our term
  bool said_unreplicated_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  const Catalog* catalog_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::thread> threads_;
};

}  // namespace unipool

#endif  // UNIPOOL_REPLICATION_REPLICATOR_H_
