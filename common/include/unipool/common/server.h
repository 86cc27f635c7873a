// A TCP server speaking unipool frames: one thread per connection (the
// number of peers is small: nodes, engines, admin tools), handshake enforced,
// every frame verified before a handler sees it.
#ifndef UNIPOOL_COMMON_SERVER_H_
#define UNIPOOL_COMMON_SERVER_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/frame.h"
#include "unipool/common/socket.h"

namespace unipool {

// Whatever a handler attaches to one connection (e.g. an RDMA queue pair
// whose life is tied to it); destroyed when the connection closes.
class ConnectionState {
 public:
  virtual ~ConnectionState() = default;
};

// What a handler sees of the connection a request arrived on.
class ServerConnection {
 public:
  ServerConnection(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}

  // The request's payload: must be consumed (read or discarded) exactly once
  // before replying, unless the handler returns an error (which closes the
  // connection).
  absl::Status ReadPayload(std::span<const std::span<uint8_t>> sinks);
  absl::Status DiscardPayload();
  absl::Status Reply(const flatbuffers::FlatBufferBuilder& reply,
                     std::span<const std::span<const uint8_t>> payload = {});

  const std::string& peer() const { return peer_; }
  wire::Role role() const { return role_; }
  uint64_t payload_bytes() const { return payload_bytes_; }
  ConnectionState* state() const { return state_.get(); }
  void set_state(std::unique_ptr<ConnectionState> state) { state_ = std::move(state); }

 private:
  friend class FrameServer;
  std::unique_ptr<ConnectionState> state_;
  int fd_;
  std::string peer_;
  wire::Role role_ = wire::Role::Client;
  uint64_t payload_bytes_ = 0;
};

class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  // Serves one verified request (never a Hello: the server answers those).
  // A non-OK return is sent to the peer as an Error message and the
  // connection is closed: use it for requests that make no sense at all;
  // per-item failures belong in the reply.
  virtual absl::Status Handle(ServerConnection& conn, const wire::Message& request) = 0;
};

struct ServerOptions {
  std::string name = "unipool";  // in HelloReply and logs
  FrameLimits limits;
  // Connections beyond this are accepted and closed at once, with a log line.
  int max_connections = 1024;
};

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
  // Closes the listener and every connection, and joins their threads.
  void Stop();

  const std::string& address() const { return address_; }
  int connection_count() const { return live_connections_.load(); }

 private:
  struct Worker {
    Fd fd;  // closed only after the thread is joined, so it is never reused early
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void Serve(Worker* worker, std::string peer);
  absl::Status Handshake(ServerConnection& conn);
  void ReapFinishedWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServerOptions options_;
  FrameHandler* const handler_;
  Fd listener_;
  std::string address_;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> live_connections_{0};
  absl::Mutex mu_;
  std::list<std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SERVER_H_
