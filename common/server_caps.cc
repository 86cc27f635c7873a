// ServerLoop's caps (server.h, ServerOptions): connections in their
// handshake, connections per identity, the total, and the bytes of requests
// being received. Loop thread only.
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "server_conn.h"
#include "server_loop.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"

namespace unipool {
namespace {

// Whom a connection counts against: its token (role and prefix), or without
// a key on the server its address. The cluster key is never capped.
std::string IdentityOf(const ServerConnection& conn, const std::string& host, bool* capped) {
  const Principal& who = conn.principal();
  *capped = !(who.authenticated && who.cluster_key);
  if (!*capped) return "the cluster key";
  if (!who.authenticated) return "address " + host;
  return absl::StrFormat("the %s token for '%s'",
                         absl::AsciiStrToLower(wire::EnumNameRole(who.role)),
                         PrintableKey(who.prefix));
}

}  // namespace

ServerLoop::ConnPtr ServerLoop::OldestUnauthenticated() {
  for (const auto& [seq, c] : unauthenticated_) {
    if (!c->busy) return c;  // (a worker answers a busy one's Hello within moments)
  }
  return nullptr;
}

bool ServerLoop::MakeRoom() {
  if (ConnPtr oldest = OldestUnauthenticated(); oldest != nullptr) {
    CloseForCap(oldest,
                absl::StrFormat("%d connections open (the server's cap): this, the oldest still "
                                "in its handshake, was closed for a new one",
                                max_connections_));
    return true;
  }
  // The identity holding the most connections gives up its oldest idle one.
  const std::string* largest = nullptr;
  size_t most = 0;
  for (const auto& [identity, mine] : identities_) {
    const Conn* any = mine.begin()->second;
    if (any->capped && mine.size() > most) {
      largest = &identity;
      most = mine.size();
    }
  }
  if (largest == nullptr) return false;
  ConnPtr idle = OldestIdle(*largest, nullptr);
  if (idle == nullptr) return false;
  CloseForCap(idle, absl::StrFormat("%d connections open (the server's cap): this, the oldest idle "
                                    "one of %s (which holds the most), was closed for a new one",
                                    max_connections_, idle->identity));
  return true;
}

void ServerLoop::Authenticated(const ConnPtr& c) {
  unauthenticated_.erase(c->seq);
  c->identity = IdentityOf(c->conn, c->host, &c->capped);
  identities_[c->identity][c->seq] = c.get();
  if (!c->capped) return;
  const size_t cap = static_cast<size_t>(options_.max_connections_per_identity);
  std::string why =
      absl::StrFormat("%s holds %d connections (the per-identity cap)", c->identity, cap);
  while (identities_[c->identity].size() > cap) {
    ConnPtr idle = OldestIdle(c->identity, c.get());
    if (idle == nullptr) {
      CloseForCap(c, why + ", none of them idle: this new one was closed");
      return;
    }
    CloseForCap(idle, why + ": this, its oldest idle one, was closed for a new one");
  }
}

ServerLoop::ConnPtr ServerLoop::OldestIdle(const std::string& identity, const Conn* except) {
  auto it = identities_.find(identity);
  if (it == identities_.end()) return nullptr;
  for (const auto& [seq, raw] : it->second) {
    if (raw != except && raw->idle()) return conns_.at(raw);
  }
  return nullptr;
}

void ServerLoop::CloseForCap(const ConnPtr& c, const std::string& why) {
  // Told why when it has spoken (a silent socket is just closed), and when
  // a frame written now cuts into no reply half sent nor a TLS handshake;
  // the socket is non-blocking, so this is best effort.
  bool spoke = c->frame_started() || c->conn.pending_ != nullptr || c->conn.handshaken_;
  if (spoke && c->frames_ok && !c->busy && c->replies.empty()) {
    flatbuffers::FlatBufferBuilder fbb;
    BuildError(fbb, absl::ResourceExhaustedError(why));
    (void)WriteFrame(c->conn.stream_, fbb);
  }
  ++cap_closes_;
  if ((cap_closes_ & (cap_closes_ - 1)) == 0) {
    LogWarning("closing connection from %s: %s (%u closed for caps so far)", c->conn.peer(), why,
               cap_closes_);
  }
  Close(c, "");
}

bool ServerLoop::CountGrowth(const ConnPtr& c, size_t growth) {
  uint64_t held = c->held() + growth;
  uint64_t counted = held > kUncountedFrameBytes ? held - kUncountedFrameBytes : 0;
  uint64_t more = counted > c->counted ? counted - c->counted : 0;
  // The cluster key's requests are counted, never refused: they are the
  // pool's own (verifications, copies).
  if (c->capped && buffered_ + more > buffered_cap_) {
    CloseForCap(c, absl::StrFormat(
                       "this request's %u bytes would take the requests being received past "
                       "%u bytes (the server's cap, --max-request-memory): retry later, or send "
                       "smaller batches",
                       uint64_t{c->meta_bytes} + c->frame.payload_bytes, buffered_cap_));
    return false;
  }
  buffered_ += more;
  c->counted += more;
  return true;
}

void ServerLoop::FrameDone(const ConnPtr& c) {
  buffered_ -= c->counted;
  c->counted = 0;
  c->ResetFrame();
}

}  // namespace unipool
