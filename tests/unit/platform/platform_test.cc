// The platform layer, function by function, in this build's implementation
// (`-DUNIPOOL_PLATFORM=linux` or `posix`): slab memory and its size seal,
// mapping it in a second process through an fd passed over a same-host
// socket, refusing another user, children that die with their parent, and
// the executable's path.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/platform/memory.h"
#include "unipool/platform/net.h"
#include "unipool/platform/process.h"

namespace unipool::platform {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Runs `child` in a forked process; returns its exit code (-1: killed).
template <typename F>
int InChild(F child) {
  pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Same-host sockets of this test live in a folder of their own (POSIX).
class PlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrFormat("/tmp/up-pt-%d", getpid());
    mkdir(dir_.c_str(), 0700);
    setenv("UNIPOOL_RUNTIME_DIR", dir_.c_str(), 1);
    name_ = absl::StrFormat("platform-test/%d", getpid());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string name_;
};

TEST_F(PlatformTest, NameAndPageSizes) {
  EXPECT_TRUE(Name() == "linux" || Name() == "posix") << Name();
  EXPECT_EQ(PageSize(), static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(kAllocationAlignment % PageSize(), 0u) << "objects must start on a page";
  if (Name() == "posix") {
    EXPECT_EQ(kAllocationAlignment, 16384u) << "Apple silicon's page";
  }
}

TEST_F(PlatformTest, SharedMemoryIsSizedInPagesAndSealedWhereTheSystemCan) {
  auto memory = CreateSharedMemory(3 * kMiB + 1);
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_GE(memory->size, 3 * kMiB + 1);
  EXPECT_EQ(memory->size % PageSize(), 0u);
  EXPECT_NE(fcntl(memory->fd.get(), F_GETFD) & FD_CLOEXEC, 0);
#if defined(__linux__)
  if (Name() == "linux") {
    EXPECT_TRUE(memory->size_fixed) << "the memfd is sealed";
  }
#endif
  if (memory->size_fixed) {
    // Neither shrinking nor growing: nobody can make a mapping SIGBUS.
    EXPECT_NE(ftruncate(memory->fd.get(), static_cast<off_t>(memory->size / 2)), 0);
    EXPECT_NE(ftruncate(memory->fd.get(), static_cast<off_t>(memory->size * 2)), 0);
  }
  struct stat st;
  ASSERT_EQ(fstat(memory->fd.get(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), memory->size);
}

TEST_F(PlatformTest, ShortMemoryIsRefusedNotMapped) {
  auto memory = CreateSharedMemory(kMiB);
  ASSERT_TRUE(memory.ok()) << memory.status();
  // Announced longer than it is (a lying or truncated peer).
  auto mapped = MapShared(memory->fd.get(), 0, memory->size + PageSize());
  EXPECT_EQ(mapped.status().code(), absl::StatusCode::kFailedPrecondition) << mapped.status();
  mapped = MapShared(memory->fd.get(), PageSize(), memory->size);
  EXPECT_EQ(mapped.status().code(), absl::StatusCode::kFailedPrecondition) << mapped.status();
  if (!memory->size_fixed) {
    // Where the size can change, a truncated object is refused too.
    ASSERT_EQ(ftruncate(memory->fd.get(), static_cast<off_t>(memory->size / 2)), 0);
    mapped = MapShared(memory->fd.get(), 0, memory->size);
    EXPECT_EQ(mapped.status().code(), absl::StatusCode::kFailedPrecondition) << mapped.status();
  }
  mapped = MapShared(memory->fd.get(), 0, 64 * 1024);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  Unmap(*mapped, 64 * 1024);
}

TEST_F(PlatformTest, NamedMemoryRoundTripAndNameLimit) {
  std::string name = absl::StrFormat("/up-pt-%d", getpid());
  auto created = CreateNamedMemory(name, 4 * PageSize());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(CreateNamedMemory(name, PageSize()).status().code(), absl::StatusCode::kAlreadyExists);
  auto opened = OpenNamedMemory(name);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->size, 4 * PageSize());
  EXPECT_TRUE(UnlinkNamedMemory(name).ok());
  EXPECT_EQ(OpenNamedMemory(name).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(UnlinkNamedMemory(name).code(), absl::StatusCode::kNotFound);
  // macOS allows 31 bytes with the slash: refused everywhere, so it is
  // caught on Linux too.
  std::string too_long(31, 'x');
  EXPECT_EQ(CreateNamedMemory(too_long, PageSize()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckSharedMemoryName(std::string(30, 'x')).ok());
}

TEST_F(PlatformTest, PrefaultKeepsEveryByte) {
  auto memory = CreateSharedMemory(8 * kMiB);
  ASSERT_TRUE(memory.ok()) << memory.status();
  auto p = MapShared(memory->fd.get(), 0, memory->size);
  ASSERT_TRUE(p.ok()) << p.status();
  for (uint64_t i = 0; i < memory->size / 2; i += 4093) (*p)[i] = static_cast<uint8_t>(i * 7);
  absl::Duration took = Prefault(*p, memory->size, 2);
  EXPECT_GE(took, absl::ZeroDuration());
  for (uint64_t i = 0; i < memory->size / 2; i += 4093) {
    ASSERT_EQ((*p)[i], static_cast<uint8_t>(i * 7)) << "byte " << i;
  }
  EXPECT_EQ((*p)[memory->size - 1], 0);
  Unmap(*p, memory->size);
}

TEST_F(PlatformTest, SecondProcessMapsTheMemoryPassedOverALocalSocket) {
  auto memory = CreateSharedMemory(kMiB);
  ASSERT_TRUE(memory.ok()) << memory.status();
  auto listener = ListenLocal(name_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  pid_t pid = fork();
  if (pid == 0) {
    auto sock = ConnectLocal(name_);
    if (!sock.ok()) _exit(2);
    uint64_t size = 0;
    Fd fd;
    if (ReceiveWithFd(sock->get(), &size, sizeof size, &fd) != sizeof size || !fd.valid()) _exit(3);
    if ((fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) == 0) _exit(4);
    auto p = MapShared(fd.get(), 0, size);
    if (!p.ok()) _exit(5);
    std::memcpy(*p + size - 6, "hello", 6);
    _exit(0);
  }
  Fd conn = Accept(listener->get(), nullptr, nullptr);
  ASSERT_TRUE(conn.valid()) << std::strerror(errno);
  EXPECT_NE(fcntl(conn.get(), F_GETFD) & FD_CLOEXEC, 0);
  auto peer = PeerUid(conn.get());
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(*peer, getuid());
  ASSERT_EQ(SendWithFd(conn.get(), &memory->size, sizeof memory->size, memory->fd.get()),
            static_cast<ssize_t>(sizeof memory->size));
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  auto p = MapShared(memory->fd.get(), 0, memory->size);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_STREQ(reinterpret_cast<char*>(*p + memory->size - 6), "hello");
  Unmap(*p, memory->size);
}

TEST_F(PlatformTest, ASecondListenerIsRefused) {
  auto listener = ListenLocal(name_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_EQ(ListenLocal(name_).status().code(), absl::StatusCode::kAlreadyExists);
  RemoveLocal(name_);
}

TEST_F(PlatformTest, AStaleSocketFileIsReplaced) {
  {
    auto listener = ListenLocal(name_);
    ASSERT_TRUE(listener.ok()) << listener.status();
  }  // closed without RemoveLocal, as by a process that was killed
  auto again = ListenLocal(name_);
  ASSERT_TRUE(again.ok()) << again.status();
  RemoveLocal(name_);
  again->Reset();
  EXPECT_EQ(ConnectLocal(name_).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PlatformTest, AnotherUserIsToldApartOrCannotConnect) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  auto listener = ListenLocal(name_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE(SetNonBlocking(listener->get(), true));
  // The child, as nobody (65534), connects and leaves; it gets no fd either
  // way: Linux tells its uid at the socket (the node then refuses, as
  // SlabShare does); POSIX does not even let it reach the socket in root's
  // 0700 folder.
  int code = InChild([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 9;
    return ConnectLocal(name_).ok() ? 0 : 1;
  });
  Fd conn = Accept(listener->get(), nullptr, nullptr);
  if (Name() == "posix") {
    EXPECT_EQ(code, 1) << "the child reached the socket in another user's folder";
    EXPECT_FALSE(conn.valid());
  } else {
    ASSERT_EQ(code, 0);
    ASSERT_TRUE(conn.valid());  // the connection waited in the backlog
    auto peer = PeerUid(conn.get());
    ASSERT_TRUE(peer.ok()) << peer.status();
    EXPECT_EQ(*peer, 65534u);
  }
}

TEST_F(PlatformTest, ExecutablePathIsThisProgram) {
  auto path = ExecutablePath();
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_TRUE(std::filesystem::path(*path).is_absolute()) << *path;
  EXPECT_EQ(std::filesystem::path(*path).filename(), "platform_test");
  EXPECT_TRUE(std::filesystem::exists(*path));
}

TEST_F(PlatformTest, ChildDiesWithItsParent) {
  // alive[1] is inherited by the grandchild across exec: EOF on alive[0]
  // says it has died. pid[1] tells us its pid.
  int alive[2], pid_pipe[2];
  ASSERT_EQ(pipe(alive), 0);
  ASSERT_TRUE(Pipe(pid_pipe));
  pid_t parent = fork();
  if (parent == 0) {
    auto watch = PrepareParentWatch();
    if (!watch.ok()) _exit(2);
    pid_t child = fork();
    if (child == 0) {
      DieWithParent(*watch);
      execl("/bin/sleep", "sleep", "120", static_cast<char*>(nullptr));
      _exit(127);
    }
    (void)!write(pid_pipe[1], &child, sizeof child);
    _exit(0);  // the parent dies; its child must follow
  }
  close(alive[1]);
  close(pid_pipe[1]);
  pid_t child = 0;
  ASSERT_EQ(read(pid_pipe[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  waitpid(parent, nullptr, 0);
  pollfd p{alive[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 30'000), 1) << "the child of a dead parent still runs after 30 s";
  char byte;
  EXPECT_EQ(read(alive[0], &byte, 1), 0);
  close(alive[0]);
  close(pid_pipe[0]);
}

TEST_F(PlatformTest, AChildOfALiveParentLives) {
  auto watch = PrepareParentWatch();
  ASSERT_TRUE(watch.ok()) << watch.status();
  int alive[2];
  ASSERT_EQ(pipe(alive), 0);
  pid_t child = fork();
  if (child == 0) {
    DieWithParent(*watch);
    execl("/bin/sleep", "sleep", "120", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(alive[1]);
  // Still running after the watcher has had every chance to act.
  pollfd p{alive[0], POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(alive[0]);
}

TEST_F(PlatformTest, SocketsAreCloseOnExecAndNeverRaiseSigpipe) {
  signal(SIGPIPE, SIG_DFL);  // a SIGPIPE would end this test process
  Fd a = Socket(AF_UNIX, SOCK_STREAM, 0, /*non_blocking=*/true);
  ASSERT_TRUE(a.valid());
  EXPECT_NE(fcntl(a.get(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(fcntl(a.get(), F_GETFL) & O_NONBLOCK, 0);
  auto listener = ListenLocal(name_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto client = ConnectLocal(name_);
  ASSERT_TRUE(client.ok()) << client.status();
  Fd server = Accept(listener->get(), nullptr, nullptr);
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(fcntl(server.get(), F_GETFL) & O_NONBLOCK, 0);
  server.Reset();
  char byte = 1;
  ssize_t sent = 0;
  for (int i = 0; i < 100 && sent >= 0; ++i) sent = send(client->get(), &byte, 1, SendFlags());
  EXPECT_LT(sent, 0);
  EXPECT_EQ(errno, EPIPE);
  RemoveLocal(name_);
}

TEST_F(PlatformTest, WakeupMakesItsFdReadable) {
  auto wakeup = Wakeup::Create();
  ASSERT_TRUE(wakeup.ok()) << wakeup.status();
  pollfd p{wakeup->fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  wakeup->Signal();
  EXPECT_EQ(poll(&p, 1, 5000), 1);
}

}  // namespace
}  // namespace unipool::platform
