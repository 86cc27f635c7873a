// A TCP server speaking unipool frames. One event-loop thread (standalone
// Asio) owns every connection while it waits for a request, so thousands of
// idle or half-sent connections cost a socket and a few hundred bytes each,
// never a thread. Only once a request's header and meta have fully arrived
// (into a buffer grown as the bytes arrive, never sized from the header's
// claim) does a worker thread take the connection, verify the frame, run the
// handler (which reads the payload and replies with blocking I/O, bounded by
// frame_timeout) and hand the connection back to the loop.
//
// With a cluster key the Hello is a mutual challenge-response (auth.h).
// Before the handshake a frame may carry only hello_limits (a few KiB);
// a connection must complete its handshake within handshake_timeout, and is
// closed after idle_timeout without a request. Connections are capped in
// total, before their handshake and per identity (ServerOptions), and the
// bytes of requests being received in total. With `tls` the loop also runs each TLS
// handshake, without blocking, before the first frame.
//
// A request its handler calls quick (FrameHandler::IsQuick) skips the worker:
// the loop thread reads its payload (at most kQuickPayloadBytes) into
// memory as it arrives, serves it where it read it, and sends the reply
// without blocking (a peer that does not read its replies stalls only
// itself). For a short request the hand-over to a worker and back costs two
// thread wake-ups, more than the work itself.
#ifndef UNIPOOL_COMMON_SERVER_H_
#define UNIPOOL_COMMON_SERVER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "unipool/common/auth.h"
#include "unipool/common/frame.h"
#include "unipool/common/socket.h"
#include "unipool/common/tls.h"

namespace unipool {

// The largest payload and meta a quick request may carry.
inline constexpr uint64_t kQuickPayloadBytes = 64 << 10;
inline constexpr size_t kQuickMetaBytes = 256 << 10;
// The first bytes of each frame a connection is receiving are not counted
// against ServerOptions::max_buffered_bytes: a short request is never
// refused for others' large ones (a connection holds at most this much
// uncounted).
inline constexpr size_t kUncountedFrameBytes = 128 << 10;
inline constexpr uint64_t kMinBufferedBytes = 256ull << 20;

// Whatever a handler attaches to one connection (e.g. an RDMA queue pair
// whose life is tied to it); destroyed when the connection closes.
class ConnectionState {
 public:
  virtual ~ConnectionState() = default;
};

// What a handler sees of the connection a request arrived on. Only one
// request of a connection is handled at a time.
class ServerConnection {
 public:
  ServerConnection(Stream stream, std::string peer) : stream_(stream), peer_(std::move(peer)) {}

  // The request's payload: must be consumed (read or discarded) exactly once
  // before replying, unless the handler returns an error (which closes the
  // connection).
  absl::Status ReadPayload(std::span<const std::span<uint8_t>> sinks);
  absl::Status DiscardPayload();
  absl::Status Reply(const flatbuffers::FlatBufferBuilder& reply,
                     std::span<const std::span<const uint8_t>> payload = {});

  const std::string& peer() const { return peer_; }
  // Who the peer proved to be in its Hello (with no cluster key on the
  // server: unauthenticated, and the role it claimed).
  const Principal& principal() const { return principal_; }
  // The version the peer speaks (its Hello): ours or one minor older.
  uint32_t protocol_version() const { return protocol_version_; }
  wire::Role role() const { return principal_.role; }
  uint64_t payload_bytes() const { return payload_bytes_; }
  ConnectionState* state() const { return state_.get(); }
  void set_state(std::unique_ptr<ConnectionState> state) { state_ = std::move(state); }

 private:
  friend class FrameServer;
  friend class ServerLoop;
  std::unique_ptr<ConnectionState> state_;
  Stream stream_;
  std::string peer_;
  // Between our HelloReply and the peer's HelloProof.
  struct PendingProof {
    Secret secret;
    Nonce client_nonce, server_nonce;
    bool token = false;
  };
  Principal principal_;
  std::unique_ptr<PendingProof> pending_;
  bool handshaken_ = false;
  uint32_t protocol_version_ = 0;
  uint64_t payload_bytes_ = 0;
  // Set while the event loop serves a quick request: its payload, already
  // read, and where replies are gathered for the loop to send.
  std::span<const uint8_t> held_payload_;
  std::vector<uint8_t>* gathered_replies_ = nullptr;
  // The current frame's meta passed the verifier (FrameServer::IsQuick).
  bool meta_verified_ = false;
};

class ServerLoop;

class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  // Serves one verified request (never a Hello: the server answers those).
  // A non-OK return is sent to the peer as an Error message and the
  // connection is closed: use it for requests that make no sense at all;
  // per-item failures belong in the reply.
  virtual absl::Status Handle(ServerConnection& conn, const wire::Message& request) = 0;
  // True when `request` may be served on the server's event-loop thread: it
  // never blocks (no fsync, no call to another server, no lock held long by
  // others) and its work and reply are small (its payload, if any, is at
  // most kQuickPayloadBytes, else it is not asked). Every other connection
  // waits meanwhile, so when in doubt, false (the default).
  virtual bool IsQuick(const wire::Message& request) const { return false; }
};

struct ServerOptions {
  std::string name = "unipool";  // in HelloReply and logs
  // Frames after the handshake.
  FrameLimits limits;
  // Frames before it: a Hello is a few dozen bytes and has no payload.
  FrameLimits hello_limits{.max_meta_bytes = 4096, .max_payload_bytes = 0};
  // Default 10 s: a peer that has not completed its Hello by then is closed.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Default 15 min: a connection with no request for this long is closed
  // (clients' pools keep connections for reuse; they redial when needed).
  absl::Duration idle_timeout = absl::Minutes(15);
  // Default 30 s: longest silence inside one frame (its header and meta, its
  // payload, or our reply to a peer that does not read).
  absl::Duration frame_timeout = absl::Seconds(30);
  // Connections served at once, also held under the process's open-file
  // limit. When full, a new connection takes the place of the oldest
  // unauthenticated one, else of the oldest idle one of the identity holding
  // the most; failing both it is closed at once, with a log line.
  int max_connections = 16384;
  // Default 1024: connections that have not completed their Hello, from
  // anyone. When full, the oldest of them is closed for the new one, so a
  // flood of half-open sockets delays a client with the key by a handshake
  // at most, and never locks it out.
  int max_unauthenticated = 1024;
  // Default 1024: connections of one identity (a token: its role and
  // prefix; on a server without a key, a peer address). Past it, the
  // identity's oldest idle connections are closed for the new one (or the
  // new one, when none is idle). Holders of the cluster key (the directory,
  // the nodes, trusted admins) are never capped: a tenant's flood cannot
  // refuse the directory's probe or a node's link.
  int max_connections_per_identity = 1024;
  // Bytes of requests being received (metas, quick payloads) held at once,
  // beyond the first kUncountedFrameBytes of each connection's frame.
  // A request whose bytes would take the total past it is refused with
  // ResourceExhausted and its connection closed, before anything is
  // allocated for them. 0: a sixteenth of physical memory, at least
  // kMinBufferedBytes.
  uint64_t max_buffered_bytes = 0;
  // Requests handled at once; more wait their turn (queued, not refused).
  int max_workers = 64;
  // The cluster key (auth.h). Null: no authentication, and then the server
  // refuses to listen on anything but loopback unless `insecure`.
  std::shared_ptr<const Credential> cluster_key;
  bool insecure = false;
  // The certificate and key (tls.h). Set: the port speaks only TLS, and a
  // peer speaking plain frames gets an Error saying so. Null: plain TCP.
  std::shared_ptr<const TlsServerConfig> tls;
};

// Checks ranges (positive durations, caps >= 1); InvalidArgument naming the
// option otherwise.
absl::Status ValidateServerOptions(const ServerOptions& options);

// options.max_buffered_bytes, or its default when 0.
uint64_t BufferedBytesCap(const ServerOptions& options);

// Thread-safe: Start and Stop may be called from any thread, once each.
class FrameServer {
 public:
  FrameServer(ServerOptions options, FrameHandler* handler);
  ~FrameServer();  // Stops.
  FrameServer(const FrameServer&) = delete;
  FrameServer& operator=(const FrameServer&) = delete;

  // Binds and starts accepting. The bound address (useful with port 0) is
  // then address().
  absl::Status Start(const std::string& listen_address);
  // Closes the listener and every connection, after the requests being
  // handled finish (their sockets are shut down, so they finish soon).
  void Stop();

  const std::string& address() const { return address_; }
  int connection_count() const { return live_connections_.load(); }

 private:
  // Runs on a worker: verifies the frame, then answers the Hello or hands
  // the request to the handler. A non-OK status closes the connection.
  absl::Status Serve(ServerConnection& conn, const ReceivedFrame& frame);
  // Whether the loop may serve `frame` itself (FrameHandler::IsQuick).
  // Records in conn whether it verified the frame, so Serve does not again.
  bool IsQuick(ServerConnection& conn, const ReceivedFrame& frame) const;
  absl::Status Handshake(ServerConnection& conn, const wire::Message& message);
  absl::Status ChallengePeer(ServerConnection& conn, const wire::Hello& hello);
  absl::Status CheckPeerProof(ServerConnection& conn, const wire::Message& message);
  absl::Status Dispatch(ServerConnection& conn, const ReceivedFrame& frame);

  const ServerOptions options_;
  FrameHandler* const handler_;
  std::string address_;
  std::atomic<int> live_connections_{0};
  std::unique_ptr<ServerLoop> loop_;  // the Asio side (server_loop.cc)
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SERVER_H_
