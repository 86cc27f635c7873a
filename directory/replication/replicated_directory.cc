#include "unipool/replication/replicated_directory.h"

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// Set once the process is stopping on purpose: giving up the lead is then
// no reason to end it.
std::atomic<bool> stopping{false};

}  // namespace

absl::StatusOr<std::unique_ptr<ReplicatedDirectory>> ReplicatedDirectory::Start(
    ReplicatedDirectoryOptions options) {
  if (options.advertise.empty()) options.advertise = options.listen;
  std::unique_ptr<ReplicatedDirectory> self(new ReplicatedDirectory(std::move(options)));
  ReplicatedDirectoryOptions& o = self->options_;
  ASSIGN_OR_RETURN(self->store_, ReplicaStore::Open(o.db));
  ASSIGN_OR_RETURN(self->etcd_, EtcdClient::Create({.endpoints = o.etcd}));
  ReplicatedDirectory* me = self.get();
  // The standby serves before it campaigns: a leader elected at once finds it.
  self->replica_service_ = std::make_unique<ReplicaService>(
      self->store_.get(),
      [me]() -> std::string {
        if (me->election_ == nullptr) return "";
        ElectionView view = me->election_->View();
        me->store_->SawTerm(view.leader_term);
        return view.leader_address;
      },
      o.advertise, o.server);
  RETURN_IF_ERROR(self->replica_service_->Start(o.replication_listen));
  ReplicationPosition at = self->store_->position();
  LogInfo("standby: catalog %s at term %d write %u, replication on %s, peers %s", o.db, at.term,
          at.seq, self->replica_service_->address(), absl::StrJoin(o.peers, ","));
  o.election.address = o.advertise;
  o.election.on_elected = [me](int64_t term) {
    me->elected_term_.store(term);
    if (!me->elected_.HasBeenNotified()) me->elected_.Notify();
  };
  o.election.on_deposed = [](int64_t term, std::string_view why) {
    if (stopping.load()) return;
    // Whatever this process acknowledged was on a majority; what it did not
    // may be only here. A restart as a standby takes the new leader's
    // catalog (a snapshot) instead.
    LogError("deposed from term %d (%s): exiting, to come back as a standby", term, why);
    std::_Exit(1);
  };
  ASSIGN_OR_RETURN(self->election_, LeaderElection::Start(self->etcd_.get(), o.election));
  return self;
}

ReplicatedDirectory::~ReplicatedDirectory() { Stop(); }

const std::string& ReplicatedDirectory::address() const {
  return service_ != nullptr ? service_->address() : options_.listen;
}

absl::Status ReplicatedDirectory::LeadWhenElected(absl::Notification& stop) {
  while (!elected_.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
    if (stop.HasBeenNotified()) return absl::CancelledError("stopped before being elected");
  }
  return Lead(elected_term_.load());
}

absl::Status ReplicatedDirectory::Lead(int64_t term) {
  ReplicationPosition base = store_->Close();
  LogInfo("elected in term %d: opening the catalog at term %d write %u", term, base.term, base.seq);
  ReplicatorOptions replication;
  replication.term = term;
  replication.leader_address = options_.advertise;
  replication.peers = options_.peers;
  replication.base = base;
  replication.allow_unreplicated = options_.allow_unreplicated;
  replication.ack_timeout = options_.ack_timeout;
  replication.max_log_writes = options_.log_writes;
  replication.connection.peer_name = "unipool-directory";
  replication.connection.role = wire::Role::Admin;
  LeaderElection* election = election_.get();
  replication.leader_term = [election] { return election->LeaderTerm(); };
  replication.on_fenced = [](std::string_view why) {
    if (stopping.load()) return;
    LogError("deposed (%s): exiting, to come back as a standby", why);
    std::_Exit(1);
  };
  replicator_ = std::make_unique<Replicator>(std::move(replication));
  DirectoryOptions directory_options = options_.directory;
  directory_options.replication = replicator_.get();
  ASSIGN_OR_RETURN(directory_, Directory::Open(options_.db, directory_options));
  replicator_->AttachCatalog(&directory_->catalog());
  service_ =
      std::make_unique<DirectoryService>(directory_.get(), options_.server, options_.tensors);
  service_->SetStepDown([this] { return AcceptStepDown(); },
                        [this] {
                          LogInfo("step-down requested: handing over term %d", replicator_->term());
                          if (options_.wake_for_step_down) options_.wake_for_step_down();
                        });
  RETURN_IF_ERROR(service_->Start(options_.listen));
  LogInfo("leading in term %d: serving on %s", term, service_->address());
  return absl::OkStatus();
}

absl::Status ReplicatedDirectory::AcceptStepDown() {
  if (replicator_->unreplicated()) {
    return absl::FailedPreconditionError(
        "no standby is in sync: a handover now would lose acknowledged writes; start a standby "
        "and wait until the leader logs it in sync");
  }
  if (step_down_requested_.exchange(true)) {
    return absl::FailedPreconditionError("a step-down is under way already");
  }
  return absl::OkStatus();
}

absl::Duration ReplicatedDirectory::HandOver() {
  // Long enough for an in-sync standby to take the last few writes; a
  // standby that has not by then is cut off, and its resignation still
  // leaves every acknowledged write on a majority.
  constexpr absl::Duration kCatchUpBound = absl::Seconds(2);
  stopping.store(true);  // giving up the lead is on purpose now
  const int64_t term = replicator_->term();
  absl::Time start = absl::Now();
  // Requests in flight finish (each acknowledged only on a majority); later
  // ones find the connection closed and are resent to the next leader.
  service_->Stop();
  absl::Time stopped = absl::Now();
  bool caught_up = replicator_->AwaitStandbyCaughtUp(kCatchUpBound);
  absl::Time synced = absl::Now();
  absl::Status resigned = election_->Resign();
  absl::Time done = absl::Now();
  LogInfo(
      "stepped down from term %d in %s: serving stopped in %s, %s in %s, leader key %s in %s; "
      "exiting",
      term, absl::FormatDuration(done - start), absl::FormatDuration(stopped - start),
      caught_up ? "a standby holds every write" : "no standby caught up (cut off)",
      absl::FormatDuration(synced - stopped), resigned.ok() ? "resigned" : resigned.ToString(),
      absl::FormatDuration(done - synced));
  Stop();
  return done - start;
}

void ReplicatedDirectory::Stop() {
  stopping.store(true);
  if (service_ != nullptr) service_->Stop();
  if (election_ != nullptr) election_->Stop();
  if (replicator_ != nullptr) replicator_->Stop();
  service_.reset();
  directory_.reset();
  if (replica_service_ != nullptr) replica_service_->Stop();
  if (store_ != nullptr) store_->Close();
}

}  // namespace unipool
