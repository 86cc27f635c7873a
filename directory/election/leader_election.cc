#include "unipool/election/leader_election.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "unipool/common/log.h"

namespace unipool {

absl::Status ValidatePoolName(std::string_view pool) {
  bool ok = !pool.empty() && pool.size() <= 128;
  for (char c : pool) ok = ok && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-');
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "pool name '%s' must be 1-128 characters of letters, digits, '.', '_' or '-'", pool));
}

namespace {

absl::Status ValidateTimings(const ElectionOptions& o) {
  if (o.lease_ttl < absl::Seconds(1) || o.renew_interval <= absl::ZeroDuration() ||
      o.campaign_poll <= absl::ZeroDuration() || o.safety_margin < absl::ZeroDuration() ||
      o.resign_holdoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "election timings: the lease TTL must be at least 1 s, the intervals positive and the "
        "margin and hold-off not negative");
  }
  if (o.lease_ttl - o.safety_margin < 2 * o.renew_interval) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "a lease TTL of %s minus a safety margin of %s leaves no room for two renewals %s apart",
        absl::FormatDuration(o.lease_ttl), absl::FormatDuration(o.safety_margin),
        absl::FormatDuration(o.renew_interval)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LeaderElection::LeaderKey(std::string_view pool) {
  return absl::StrFormat("/unipool/%s/leader", pool);
}

absl::StatusOr<std::unique_ptr<LeaderElection>> LeaderElection::Start(EtcdClient* etcd,
                                                                      ElectionOptions options,
                                                                      Clock* clock) {
  if (absl::Status s = ValidatePoolName(options.pool); !s.ok()) return s;
  if (options.address.empty()) {
    return absl::InvalidArgumentError("the election needs this directory's address");
  }
  if (absl::Status s = ValidateTimings(options); !s.ok()) return s;
  std::unique_ptr<LeaderElection> election(new LeaderElection(etcd, std::move(options), clock));
  election->thread_ = std::thread([e = election.get()] { e->Run(); });
  return election;
}

LeaderElection::LeaderElection(EtcdClient* etcd, ElectionOptions options, Clock* clock)
    : etcd_(etcd),
      options_(std::move(options)),
      key_(LeaderKey(options_.pool)),
      clock_(clock),
      state_(options_.safety_margin) {}

LeaderElection::~LeaderElection() { Stop(); }

std::optional<int64_t> LeaderElection::LeaderTerm() const {
  absl::MutexLock lock(&mutex_);
  if (!state_.MayAcknowledge(clock_->Now())) return std::nullopt;
  return state_.term();
}

ElectionView LeaderElection::View() const {
  absl::MutexLock lock(&mutex_);
  ElectionView view;
  absl::Time now = clock_->Now();
  view.role = state_.MayAcknowledge(now) ? ElectionRole::kLeader : ElectionRole::kCandidate;
  view.term = view.role == ElectionRole::kLeader ? state_.term() : 0;
  view.leader_address = state_.leader_address();
  view.leader_term = state_.highest_term();
  view.lease_left =
      view.role == ElectionRole::kLeader ? state_.deadline() - now : absl::ZeroDuration();
  return view;
}

void LeaderElection::Run() {
  while (true) {
    bool leading;
    {
      absl::MutexLock lock(&mutex_);
      if (stopping_) break;
      leading = state_.role() == ElectionRole::kLeader;
    }
    if (leading) {
      Renew();
    } else {
      Campaign();
    }
    absl::MutexLock lock(&mutex_);
    if (stopping_) break;
    leading = state_.role() == ElectionRole::kLeader;
    // A leader wakes at its deadline at the latest, to depose itself on time.
    absl::Duration wait = leading
                              ? std::min(options_.renew_interval, state_.deadline() - clock_->Now())
                              : options_.campaign_poll;
    auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) { return stopping_; };
    mutex_.AwaitWithTimeout(absl::Condition(&stop), std::max(wait, absl::ZeroDuration()));
  }
}

void LeaderElection::Campaign() {
  {
    absl::MutexLock lock(&mutex_);
    if (clock_->Now() < campaign_after_) return;
  }
  auto current = etcd_->Get(key_);
  if (current.ok() && current->kv.has_value()) {
    absl::MutexLock lock(&mutex_);
    warned_ = false;
    state_.Observe(current->kv->create_revision, current->kv->value);
    return;
  }
  absl::Time sent_at = clock_->Now();
  absl::StatusOr<EtcdClient::Lease> lease =
      current.ok() ? etcd_->GrantLease(options_.lease_ttl) : current.status();
  absl::StatusOr<EtcdCreateResult> created =
      lease.ok() ? etcd_->CreateIfAbsent(key_, options_.address, lease->id) : lease.status();
  if (!created.ok()) {
    absl::MutexLock lock(&mutex_);
    if (!warned_) LogWarning("election: cannot campaign: %s", created.status().ToString());
    warned_ = true;
    return;
  }
  if (!created->created) {
    (void)etcd_->RevokeLease(lease->id);  // unused; it would expire anyway
    absl::MutexLock lock(&mutex_);
    state_.Observe(created->holder.create_revision, created->holder.value);
    return;
  }
  absl::Status became;
  {
    absl::MutexLock lock(&mutex_);
    warned_ = false;
    became = state_.BecomeLeader(created->revision, sent_at, lease->ttl, clock_->Now());
    if (became.ok()) {
      lease_ = lease->id;
      state_.Observe(created->revision, options_.address);
    }
  }
  if (!became.ok()) {
    LogWarning("election: elected but not leading: %s", became.ToString());
    Release(created->revision, lease->id);
    return;
  }
  LogInfo("election: leader of pool %s with term %d", options_.pool, created->revision);
  if (options_.on_elected) options_.on_elected(created->revision);
}

void LeaderElection::Renew() {
  int64_t term, lease;
  std::optional<int64_t> expired;
  {
    absl::MutexLock lock(&mutex_);
    expired = state_.ExpireIfDue(clock_->Now());
    term = state_.term();
    lease = lease_;
  }
  if (expired) return Deposed(expired, lease, "the lease could not be renewed in time");
  absl::Time sent_at = clock_->Now();
  absl::StatusOr<absl::Duration> ttl = etcd_->KeepAlive(lease);
  absl::StatusOr<EtcdGetResult> key = ttl.ok() ? etcd_->Get(key_) : ttl.status();
  std::optional<int64_t> lost;
  std::string why;
  {
    absl::MutexLock lock(&mutex_);
    if (state_.term() != term) return;  // resigned meanwhile
    if (ttl.ok()) state_.Renewed(sent_at, *ttl, clock_->Now());
    if (absl::IsNotFound(ttl.status())) {
      lost = state_.StepDown();
      why = "etcd says the lease has expired";
    } else if (key.ok() && (!key->kv.has_value() || key->kv->create_revision != term)) {
      lost = state_.StepDown();
      why = "the leader key was deleted or replaced";
      if (key->kv.has_value()) state_.Observe(key->kv->create_revision, key->kv->value);
    } else if (!key.ok() && !warned_) {
      LogWarning("election: cannot renew the leader's lease (term %d): %s", term,
                 key.status().ToString());
      warned_ = true;
    } else if (key.ok()) {
      warned_ = false;
    }
    if (!lost) lost = state_.ExpireIfDue(clock_->Now());
    if (lost && why.empty()) why = "the lease could not be renewed in time";
  }
  if (lost) Deposed(lost, lease, why);
}

void LeaderElection::Deposed(std::optional<int64_t> term, int64_t lease, std::string_view why) {
  LogWarning("election: no longer leader of pool %s (term %d): %s", options_.pool, *term, why);
  Release(*term, lease);
  if (options_.on_deposed) options_.on_deposed(*term, why);
}

void LeaderElection::Release(int64_t term, int64_t lease) {
  // Best effort: if etcd cannot be reached, the lease expires by itself.
  (void)etcd_->DeleteIfCreated(key_, term);
  (void)etcd_->RevokeLease(lease);
}

absl::Status LeaderElection::Resign() {
  std::optional<int64_t> term;
  int64_t lease;
  {
    absl::MutexLock lock(&mutex_);
    term = state_.StepDown();
    lease = lease_;
    campaign_after_ = clock_->Now() + options_.resign_holdoff;
  }
  if (!term) return absl::OkStatus();
  LogInfo("election: resigning as leader of pool %s (term %d)", options_.pool, *term);
  absl::StatusOr<bool> deleted = etcd_->DeleteIfCreated(key_, *term);
  (void)etcd_->RevokeLease(lease);
  if (options_.on_deposed) options_.on_deposed(*term, "resigned");
  return deleted.status();
}

void LeaderElection::Stop() {
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  (void)Resign();
}

}  // namespace unipool
