#include "unipool/replication/replicator.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "rocksdb/write_batch.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// A standby that cannot be reached is dialled again this often.
constexpr absl::Duration kRedialInterval = absl::Milliseconds(200);
// A snapshot goes in chunks of about this many bytes.
constexpr size_t kSnapshotChunkBytes = 1 << 20;

std::string Show(ReplicationPosition p) {
  return absl::StrFormat("(term %d, write %u)", p.term, p.seq);
}

}  // namespace

Replicator::Replicator(ReplicatorOptions options) : options_(std::move(options)) {
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& address : options_.peers) peers_.push_back(Peer{.address = address});
  }
  for (size_t i = 0; i < options_.peers.size(); ++i) {
    threads_.emplace_back([this, i] { PeerLoop(i); });
  }
}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    changed_.SignalAll();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Replicator::AttachCatalog(const Catalog* catalog) {
  absl::MutexLock lock(&mu_);
  catalog_ = catalog;
}

uint64_t Replicator::Stamp(rocksdb::WriteBatch& batch) {
  uint64_t seq;
  {
    absl::MutexLock lock(&mu_);
    seq = last_ + 1;
  }
  batch.Put(rocksdb::Slice(kPositionKey.data(), kPositionKey.size()),
            EncodePosition({options_.term, seq}));
  return seq;
}

void Replicator::Append(uint64_t seq, std::string_view data) {
  absl::MutexLock lock(&mu_);
  last_ = seq;
  log_.emplace_back(seq, std::string(data));
  log_bytes_ += data.size();
  while (!log_.empty() &&
         (log_.size() > options_.max_log_writes || log_bytes_ > options_.max_log_bytes)) {
    log_bytes_ -= log_.front().second.size();
    trimmed_through_ = log_.front().first;
    log_.pop_front();
  }
  changed_.SignalAll();
}

bool Replicator::Fenced(std::string* why) {
  if (!fenced_.empty()) {
    *why = fenced_;
    return true;
  }
  std::optional<int64_t> term = options_.leader_term ? options_.leader_term() : options_.term;
  if (term != options_.term) {
    *why = absl::StrFormat("this directory no longer leads (its term %d is over)", options_.term);
    return true;
  }
  return false;
}

absl::Status Replicator::AwaitReplicated(uint64_t seq) {
  std::string why;
  absl::Status waited = WaitForMajority(seq, &why);
  if (!why.empty() && options_.on_fenced) {
    // A deposed leader ends itself before it answers: its clients see the
    // connection close and send the request again, to the new leader.
    options_.on_fenced(why);
  }
  return waited;
}

absl::Status Replicator::WaitForMajority(uint64_t seq, std::string* fenced) {
  const size_t needed = (options_.peers.size() + 1) / 2;  // a majority, counting us
  absl::Time deadline = absl::Now() + options_.ack_timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    std::string why;
    if (Fenced(&why)) {
      *fenced = why;
      return absl::UnavailableError(why);
    }
    size_t have = 0, in_sync = 0;
    for (const Peer& peer : peers_) {
      if (peer.acked >= seq) ++have;
      if (peer.in_sync) ++in_sync;
    }
    if (have >= needed) break;
    if (options_.allow_unreplicated && in_sync == 0) {
      if (!said_unreplicated_) {
        LogWarning(
            "unreplicated: no standby is in sync; writes go on (--allow-unreplicated) and "
            "would be lost with this directory");
        said_unreplicated_ = true;
      }
      break;
    }
    if (stop_ || absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrFormat(
          "write %u of term %d reached no standby within %s (%d of %d standbys in sync): not "
          "acknowledged; retry",
          seq, options_.term, absl::FormatDuration(options_.ack_timeout), in_sync, peers_.size()));
    }
    changed_.WaitWithDeadline(&mu_, std::min(deadline, absl::Now() + absl::Milliseconds(100)));
  }
  // Fenced again after the wait: a term that ended meanwhile acknowledges nothing.
  if (Fenced(fenced)) return absl::UnavailableError(*fenced);
  return absl::OkStatus();
}

std::vector<StandbyView> Replicator::Standbys() {
  absl::MutexLock lock(&mu_);
  std::vector<StandbyView> views;
  for (const Peer& peer : peers_) {
    views.push_back({.address = peer.address,
                     .in_sync = peer.in_sync,
                     .acked = peer.acked,
                     .lag = last_ > peer.acked ? last_ - peer.acked : 0});
  }
  return views;
}

void Replicator::Describe(PoolState& status) {
  absl::MutexLock lock(&mu_);
  status.directories.push_back({.address = options_.leader_address,
                                .role = DirectoryRole::kLeader,
                                .term = options_.term,
                                .position = last_});
  bool none_in_sync = true;
  for (const Peer& peer : peers_) {
    none_in_sync = none_in_sync && !peer.in_sync;
    // A standby still on another term's history has none of ours yet.
    uint64_t has = peer.at.term == options_.term ? std::max(peer.acked, peer.at.seq) : 0;
    status.directories.push_back(
        {.address = peer.client_address,
         .replication_address = peer.address,
         .role = peer.connected ? DirectoryRole::kStandby : DirectoryRole::kUnreachable,
         .term = has > 0 ? options_.term : peer.at.term,
         .position = has > 0 ? has : peer.at.seq,
         .lag = last_ > has ? last_ - has : 0});
  }
  status.unreplicated = options_.allow_unreplicated && none_in_sync;
}

bool Replicator::AwaitStandbyCaughtUp(absl::Duration bound) {
  absl::Time deadline = absl::Now() + bound;
  absl::MutexLock lock(&mu_);
  while (true) {
    for (const Peer& peer : peers_) {
      if (peer.in_sync && peer.acked >= last_) return true;
    }
    if (stop_ || absl::Now() >= deadline) return false;
    changed_.WaitWithDeadline(&mu_, deadline);
  }
}

bool Replicator::unreplicated() {
  absl::MutexLock lock(&mu_);
  return std::none_of(peers_.begin(), peers_.end(), [](const Peer& p) { return p.in_sync; });
}

void Replicator::PeerLoop(size_t peer) {
  const std::string address = options_.peers[peer];
  std::string last_error;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
    }
    absl::StatusOr<std::unique_ptr<Connection>> conn =
        Connection::Open(address, options_.connection);
    absl::Status why = conn.ok() ? ServePeer(**conn, peer) : conn.status();
    Lost(peer, why);
    if (why.ToString() != last_error) {
      LogWarning("standby %s: %s; dialling again every %s", address, why.message(),
                 absl::FormatDuration(kRedialInterval));
      last_error = why.ToString();
    }
    absl::MutexLock lock(&mu_);
    changed_.WaitWithTimeout(&mu_, kRedialInterval);
  }
}

std::optional<uint64_t> Replicator::NextFor(ReplicationPosition at) {
  absl::MutexLock lock(&mu_);
  if (at.term == options_.term && at.seq <= last_ && at.seq >= trimmed_through_) {
    return at.seq + 1;
  }
  if (at == options_.base && trimmed_through_ == 0) return 1;
  return std::nullopt;
}

absl::Status Replicator::ServePeer(Connection& conn, size_t peer) {
  ASSIGN_OR_RETURN(ReplicationPosition at,
                   Send(conn, peer, static_cast<int>(wire::ReplicateKind::Probe), 0, ""));
  std::optional<uint64_t> next = NextFor(at);
  if (!next.has_value()) {
    LogInfo("standby %s is at %s, which the log no longer holds: sending a snapshot",
            options_.peers[peer], Show(at));
    ASSIGN_OR_RETURN(next, SendSnapshot(conn, peer));
  }
  LogInfo("standby %s: shipping from write %u of term %d", options_.peers[peer], *next,
          options_.term);
  while (true) {
    std::string data;
    {
      absl::MutexLock lock(&mu_);
      while (!stop_ && last_ < *next) {
        if (!peers_[peer].in_sync) {  // caught up
          peers_[peer].in_sync = true;
          said_unreplicated_ = false;
          LogInfo("standby %s in sync at write %u of term %d", options_.peers[peer], *next - 1,
                  options_.term);
        }
        changed_.Wait(&mu_);
      }
      if (stop_) return absl::CancelledError("stopping");
      if (*next <= trimmed_through_) {
        return absl::OutOfRangeError(
            absl::StrFormat("write %u left the log before it was sent", *next));
      }
      data = log_[*next - trimmed_through_ - 1].second;
    }
    RETURN_IF_ERROR(
        Send(conn, peer, static_cast<int>(wire::ReplicateKind::Batch), *next, data).status());
    Acked(peer, *next);
    ++*next;
  }
}

absl::StatusOr<uint64_t> Replicator::SendSnapshot(Connection& conn, size_t peer) {
  const Catalog* catalog;
  uint64_t mark;
  {
    absl::MutexLock lock(&mu_);
    catalog = catalog_;
    // Every write up to `mark` is in RocksDB before the scan starts; later
    // ones may be in the scan too, and are sent again after it (a write
    // applied twice leaves the same records).
    mark = last_;
  }
  if (catalog == nullptr) return absl::UnavailableError("the catalog is not open yet");
  RETURN_IF_ERROR(Send(conn, peer, static_cast<int>(wire::ReplicateKind::Reset), 0, "").status());
  rocksdb::WriteBatch chunk;
  uint64_t records = 0, bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (chunk.Count() == 0) return absl::OkStatus();
    bytes += chunk.GetDataSize();
    RETURN_IF_ERROR(
        Send(conn, peer, static_cast<int>(wire::ReplicateKind::Chunk), 0, chunk.Data()).status());
    chunk.Clear();
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(catalog->Scan([&](std::string_view key, std::string_view value) {
    if (key == kPositionKey) return absl::OkStatus();
    chunk.Put(rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
    ++records;
    return chunk.GetDataSize() >= kSnapshotChunkBytes ? flush() : absl::OkStatus();
  }));
  RETURN_IF_ERROR(flush());
  RETURN_IF_ERROR(Send(conn, peer, static_cast<int>(wire::ReplicateKind::Mark), mark, "").status());
  LogInfo("standby %s: snapshot of %u records (%u bytes) sent, as of write %u of term %d",
          options_.peers[peer], records, bytes, mark, options_.term);
  Acked(peer, mark);
  return mark + 1;
}

absl::StatusOr<ReplicationPosition> Replicator::Send(Connection& conn, size_t peer, int kind,
                                                     uint64_t seq, std::string_view data) {
  flatbuffers::FlatBufferBuilder fbb;
  auto leader = fbb.CreateString(options_.leader_address);
  FinishMessage(fbb, wire::CreateReplicate(fbb, options_.term, seq,
                                           static_cast<wire::ReplicateKind>(kind), leader));
  std::span<const uint8_t> payload(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  absl::StatusOr<ReceivedFrame> reply = conn.Call(fbb, {&payload, data.empty() ? 0u : 1u});
  if (!reply.ok()) {
    // Only a standby's refusal of our term (ReplicaStore) is a
    // FailedPrecondition: a newer leader was elected.
    if (absl::IsFailedPrecondition(reply.status())) Fence(reply.status());
    return reply.status();
  }
  const wire::ReplicateReply* answer = reply->message()->body_as_ReplicateReply();
  if (answer == nullptr)
    return absl::InternalError("a standby answered a Replicate with another message");
  ReplicationPosition at{answer->applied_term(), answer->applied_seq()};
  Heard(peer, at, AsStringView(answer->address()));
  return at;
}

void Replicator::Heard(size_t peer, ReplicationPosition at, std::string_view client_address) {
  // An address is a name for status pages only: bounded, never trusted further.
  constexpr size_t kMaxAddressBytes = 256;
  absl::MutexLock lock(&mu_);
  Peer& p = peers_[peer];
  p.connected = true;
  p.at = at;
  if (client_address.size() <= kMaxAddressBytes) p.client_address = std::string(client_address);
}

void Replicator::Fence(const absl::Status& refusal) {
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    if (!fenced_.empty()) return;
    fenced_ = absl::StrFormat("a standby refused term %d: %s", options_.term, refusal.message());
    why = fenced_;
    changed_.SignalAll();
  }
  LogError("%s: this directory acknowledges nothing more", why);
  if (options_.on_fenced) options_.on_fenced(why);
}

void Replicator::Acked(size_t peer, uint64_t seq) {
  absl::MutexLock lock(&mu_);
  peers_[peer].acked = std::max(peers_[peer].acked, seq);
  changed_.SignalAll();
}

void Replicator::Lost(size_t peer, const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  if (peers_[peer].in_sync) {
    LogWarning("standby %s out of sync: %s", options_.peers[peer], why.message());
  }
  peers_[peer].in_sync = false;
  peers_[peer].connected = false;
  changed_.SignalAll();
}

}  // namespace unipool
