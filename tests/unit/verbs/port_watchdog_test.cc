// PortWatchdog (transport/verbs/port_watchdog.h) on a socket pair, with no
// RDMA device: a call blocked on a connection whose port goes down returns
// at once, and nothing else is touched.
#include "unipool/verbs/port_watchdog.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace unipool {
namespace {

// A connected pair of sockets, closed at the end.
struct SocketPair {
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~SocketPair() {
    close(fds[0]);
    close(fds[1]);
  }
  int fds[2] = {-1, -1};
};

TEST(PortWatchdogTest, ABlockedCallEndsWhenItsPortGoesDown) {
  SocketPair pair;
  std::atomic<bool> port_active{true};
  // Last, so it stops (and calls nothing) before what its checks read goes.
  PortWatchdog dog(absl::Milliseconds(10));
  PortWatchdog::Guard guard = dog.Watch([&] { return port_active.load(); }, pair.fds[0]);
  std::atomic<bool> returned{false};
  ssize_t got = 1;
  std::thread reader([&] {
    char byte;
    got = recv(pair.fds[0], &byte, 1, 0);  // no one writes: blocks until shut down
    returned = true;
  });
  // The port is up: the call keeps waiting (checked again by the end state).
  EXPECT_FALSE(returned.load());
  EXPECT_FALSE(guard.fired());
  port_active = false;  // the cable is pulled
  reader.join();        // a watchdog that never fires hangs here (ctest's timeout)
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(got, 0) << "the socket was shut down, so the read ends";
  EXPECT_TRUE(guard.fired());
  EXPECT_EQ(dog.fired(), 1u);
}

TEST(PortWatchdogTest, NothingIsShutDownOnceTheGuardHasEnded) {
  SocketPair pair, other;
  std::atomic<int> checks{0}, other_checks{0};
  std::atomic<bool> port_active{true};
  PortWatchdog dog(absl::Milliseconds(10));
  {
    PortWatchdog::Guard guard = dog.Watch(
        [&] {
          ++checks;
          return port_active.load();
        },
        pair.fds[0]);
    while (checks.load() < 2) std::this_thread::yield();  // the watchdog is looking
  }
  port_active = false;  // too late: the request is over
  // A second watched connection, to know the watchdog went round again.
  {
    PortWatchdog::Guard guard = dog.Watch(
        [&] {
          ++other_checks;
          return true;
        },
        other.fds[0]);
    while (other_checks.load() < 2) std::this_thread::yield();
  }
  EXPECT_EQ(dog.fired(), 0u);
  // The first socket still works both ways.
  ASSERT_EQ(send(pair.fds[1], "x", 1, 0), 1);
  char byte = 0;
  EXPECT_EQ(recv(pair.fds[0], &byte, 1, 0), 1);
  EXPECT_EQ(byte, 'x');
}

}  // namespace
}  // namespace unipool
