// FrameServer's event loop: accepts, enforces connection caps and timeouts,
// and gathers each request's header and meta without blocking. Quick
// requests it serves itself, sending their replies without blocking; a
// worker pool serves the others. See unipool/common/server.h for the
// contract.
//
// Thread safety: Start and Stop from one owner thread; everything else runs
// on the loop thread, except `serve` for a request that is not quick, which
// runs on a worker while the connection is handed over (the loop does not
// touch it meanwhile).
#ifndef UNIPOOL_COMMON_SERVER_LOOP_H_
#define UNIPOOL_COMMON_SERVER_LOOP_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "asio/posix/stream_descriptor.hpp"
#include "asio/steady_timer.hpp"
#include "unipool/common/server.h"
#include "unipool/common/stream.h"
#include "worker_pool.h"

namespace unipool {

class ServerLoop {
 public:
  using ServeFn = std::function<absl::Status(ServerConnection&, const ReceivedFrame&)>;
  // Whether the loop thread may serve a complete frame itself.
  using QuickFn = std::function<bool(ServerConnection&, const ReceivedFrame&)>;

  ServerLoop(const ServerOptions& options, std::atomic<int>* live, ServeFn serve, QuickFn quick);
  ~ServerLoop();

  absl::Status Start(Fd listener);
  void Stop();

 private:
  struct Conn;
  using ConnPtr = std::shared_ptr<Conn>;
  using Clock = std::chrono::steady_clock;

  void WaitAccept();
  void AcceptReady();
  void Admit(int fd, const std::string& host, const std::string& peer);
  // Calls `next` once the socket is readable or writable as `wait` says.
  void Await(const ConnPtr& c, Wait wait, std::function<void()> next);
  // TLS ports: tells a TLS client from one speaking plain frames by the
  // first byte (a handshake record, or the frame magic's), then runs the
  // handshake step by step.
  void Sniff(const ConnPtr& c);
  void AcceptTls(const ConnPtr& c);
  // Reads what has arrived of the current frame; once its header and meta
  // are complete, serves it here (quick) or hands the connection to a worker.
  void ReadMore(const ConnPtr& c);
  // Counts `n` bytes just read; false when the loop stops reading (the
  // connection was closed, handed over, or waits to send a reply).
  bool TakeBytes(const ConnPtr& c, size_t n);
  // A frame's header or meta has arrived whole: checks the sizes; decides
  // where the request is served. False as TakeBytes.
  bool HeaderComplete(const ConnPtr& c);
  bool MetaComplete(const ConnPtr& c);
  // Sets when the connection is closed (`what` says why) unless it makes
  // progress first. One sweep checks every connection's deadline, so a
  // request costs no timer operation.
  void ArmTimer(const ConnPtr& c, absl::Duration after, const char* what);
  void Sweep();
  // Serves a quick request on this thread; true when the next can be read.
  bool ServeHere(const ConnPtr& c);
  // Sends the replies ServeHere gathered without blocking; true once all
  // are sent, false while it waits for the socket (or closed it).
  bool SendReplies(const ConnPtr& c);
  void HandOver(const ConnPtr& c);
  void Close(const ConnPtr& c, const std::string& why);

  // --- caps (server.h): connections per identity, unauthenticated ones,
  // buffered bytes ---

  // Makes room for one more connection under the total cap (closing the
  // oldest unauthenticated one, else the oldest idle one of the identity
  // holding the most); false when nothing could be closed.
  bool MakeRoom();
  // The oldest connection still in its handshake that no worker holds.
  ConnPtr OldestUnauthenticated();
  // `c` just completed its handshake: it leaves the unauthenticated budget
  // and joins its identity's, closing that identity's oldest idle
  // connections past the cap (or `c`, when none is idle).
  void Authenticated(const ConnPtr& c);
  // The oldest idle connection of `identity` other than `except`, or null.
  ConnPtr OldestIdle(const std::string& identity, const Conn* except);
  // Closes `c` for a cap, telling its peer `why` when a frame can be sent
  // without cutting another. Logged at 1, 2, 4... such closes.
  void CloseForCap(const ConnPtr& c, const std::string& why);
  // Counts the `growth` bytes `c` is about to allocate for its frame
  // against the buffered-bytes cap; false when refused (and `c` closed).
  bool CountGrowth(const ConnPtr& c, size_t growth);
  // Forgets `c`'s frame and its counted bytes.
  void FrameDone(const ConnPtr& c);

  const ServerOptions& options_;
  std::atomic<int>* const live_;
  const ServeFn serve_;
  const QuickFn quick_;
  const std::chrono::nanoseconds sweep_period_;
  int max_connections_ = 0;  // options' cap, held under the open-file limit

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<asio::posix::stream_descriptor> listener_;
  std::unique_ptr<asio::steady_timer> accept_retry_;
  std::unique_ptr<asio::steady_timer> sweep_timer_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  WorkerPool pool_;

  const uint64_t buffered_cap_;

  // Loop thread only.
  std::map<Conn*, ConnPtr> conns_;
  uint64_t next_seq_ = 0;  // admission order: a lower one is older
  // Connections without a completed handshake, oldest first.
  std::map<uint64_t, ConnPtr> unauthenticated_;
  // The others, by identity, oldest first.
  std::map<std::string, std::map<uint64_t, Conn*>> identities_;
  uint64_t buffered_ = 0;  // bytes counted against buffered_cap_
  uint64_t refused_ = 0;
  uint64_t cap_closes_ = 0;
};

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SERVER_LOOP_H_
