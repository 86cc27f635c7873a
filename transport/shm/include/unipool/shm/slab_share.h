// The node's side of the same-host path (transport/shm/shm_protocol.h): hands the
// slab's file descriptor to clients on this machine, who map it and copy
// pages themselves. Only clients running as the node's user (or root) get
// it: the mapping can change every page.
//
// Thread safety: thread-safe; one thread serves every client (a handshake
// is a few bytes; afterwards a client costs the node nothing but an open
// socket, watched so that the node notices when it goes).
#ifndef UNIPOOL_SHM_SLAB_SHARE_H_
#define UNIPOOL_SHM_SLAB_SHARE_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "unipool/common/slab.h"
#include "unipool/common/socket.h"
#include "unipool/platform/net.h"

namespace unipool {

class SlabShare {
 public:
  // Listens on the same-host socket ShmSocketName(data_address)
  // (platform::ListenLocal: abstract on Linux, a file in a 0700 folder on macOS).
  // `slab` must outlive the share. AlreadyExists when another process on
  // this machine already shares under that address.
  static absl::StatusOr<std::unique_ptr<SlabShare>> Start(const Slab* slab,
                                                          const std::string& data_address);
  // Closes the listener and every client's socket (clients then stop using
  // their mappings), and joins the thread.
  ~SlabShare();
  SlabShare(const SlabShare&) = delete;
  SlabShare& operator=(const SlabShare&) = delete;

  // Clients that currently hold the slab, and handshakes answered since start.
  uint64_t clients() const { return clients_.load(); }
  uint64_t handshakes() const { return handshakes_.load(); }

 private:
  SlabShare(const Slab* slab, std::string name, Fd listener, platform::Wakeup wake);
  void Run();
  // Answers one client's request; false when it gets no fd (closed at once).
  bool Serve(int fd);

  // At most this many clients hold the slab at once; more are refused.
  static constexpr int kMaxClients = 4096;

  const Slab* const slab_;
  const std::string name_;  // of the same-host socket (platform::ListenLocal)
  Fd listener_;
  platform::Wakeup wake_;  // signalled by the destructor to end Run
  std::atomic<uint64_t> clients_{0}, handshakes_{0};
  std::thread thread_;
};

}  // namespace unipool

#endif  // UNIPOOL_SHM_SLAB_SHARE_H_
