// Ends TCP requests that a pulled cable would leave hanging. A path's
// control connection (RdmaConnect, RdmaReadTo, RdmaVerify) may run over the
// same cable as its queue pair; when the cable goes, a request in flight on
// it gets no reply until the cable is back or the I/O timeout (30 s) ends
// it. While a request is watched, the watchdog checks the path's port every
// `interval` and shuts the connection's socket down when the port has left
// ACTIVE: the blocked call returns at once with an error, and the path's
// share moves on like any other path failure.
//
// Thread safety: thread-safe. One thread, started on the first Watch and
// idle while nothing is watched.
#ifndef UNIPOOL_VERBS_PORT_WATCHDOG_H_
#define UNIPOOL_VERBS_PORT_WATCHDOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace unipool {

class PortWatchdog {
 public:
  explicit PortWatchdog(absl::Duration interval = absl::Milliseconds(100)) : interval_(interval) {}
  ~PortWatchdog();
  PortWatchdog(const PortWatchdog&) = delete;
  PortWatchdog& operator=(const PortWatchdog&) = delete;

  // While it lives, `fd` is shut down (both ways) as soon as `port_active`
  // says false. `fd` must stay open while the guard lives.
  class Guard {
   public:
    Guard(Guard&& other) noexcept : dog_(other.dog_), id_(other.id_) { other.dog_ = nullptr; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    Guard& operator=(Guard&&) = delete;
    ~Guard();
    // Whether the watchdog shut the socket down (the port went down).
    bool fired() const;

   private:
    friend class PortWatchdog;
    Guard(PortWatchdog* dog, uint64_t id) : dog_(dog), id_(id) {}
    PortWatchdog* dog_;
    uint64_t id_;
  };
  Guard Watch(std::function<bool()> port_active, int fd);

  // Sockets shut down so far.
  uint64_t fired() const;

 private:
  struct Entry {
    std::function<bool()> port_active;
    int fd = -1;
    bool fired = false;
  };
  void Run();
  void Forget(uint64_t id);
  bool Fired(uint64_t id) const;

  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t fired_total_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started by the first Watch, under mu_
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_PORT_WATCHDOG_H_
