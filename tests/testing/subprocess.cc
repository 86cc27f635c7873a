#include "unipool/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"
#include "unipool/platform/net.h"
#include "unipool/platform/process.h"

namespace unipool::testing {
namespace {

std::vector<char*> CArgs(std::vector<std::string>& storage) {
  std::vector<char*> out;
  for (auto& s : storage) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the parent, before fork: what lets the child die with the test.
platform::ParentWatch PrepareWatch() {
  auto watch = platform::PrepareParentWatch();
  return watch.ok() ? *watch : platform::ParentWatch{getpid()};
}

// In the child: die with the test, default signal handling, then exec.
[[noreturn]] void Exec(const platform::ParentWatch& watch, std::vector<std::string> argv,
                       const std::vector<std::string>& env) {
  platform::DieWithParent(watch);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  for (const std::string& e : env) putenv(strdup(e.c_str()));
  std::vector<char*> args = CArgs(argv);
  execv(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

int WaitExit(pid_t pid, absl::Time deadline) {
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace

RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              const std::string& input, absl::Duration timeout) {
  signal(SIGPIPE, SIG_IGN);
  int in[2], out[2], err[2];
  if (!platform::Pipe(in) || !platform::Pipe(out) || !platform::Pipe(err)) {
    return {-1, "", "pipe failed"};
  }
  platform::ParentWatch watch = PrepareWatch();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    Exec(watch, argv, env);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  RunResult result;
  size_t written = 0;
  int in_fd = in[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  absl::Time deadline = absl::Now() + timeout;
  bool out_open = true, err_open = true;
  while ((out_open || err_open) && absl::Now() < deadline) {
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0},
                     {err_open ? err[0] : -1, POLLIN, 0},
                     {in_fd, POLLOUT, 0}};
    if (poll(fds, 3, 100) < 0 && errno != EINTR) break;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, n);
      } else {
        (i == 0 ? out_open : err_open) = false;
      }
    }
    if (in_fd >= 0 && fds[2].revents != 0) {
      ssize_t n = write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += n;
      if (n < 0 || written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out[0]);
  close(err[0]);
  result.exit_code = WaitExit(pid, deadline);
  return result;
}

RunResult RunOnTerminal(const std::vector<std::string>& argv,
                        const std::vector<std::string>& input_chunks, absl::Duration chunk_interval,
                        absl::Duration timeout) {
  signal(SIGPIPE, SIG_IGN);
  int master = -1, slave = -1;
  if (!platform::OpenPty(&master, &slave, 30, 100)) return {-1, "", "openpty failed"};
  int in[2];
  if (!platform::Pipe(in)) return {-1, "", "pipe failed"};
  platform::ParentWatch watch = PrepareWatch();
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    dup2(in[0], STDIN_FILENO);
    dup2(slave, STDOUT_FILENO);
    dup2(slave, STDERR_FILENO);
    close(master);
    Exec(watch, argv, {"TERM=xterm"});
  }
  close(slave);
  close(in[0]);
  RunResult result;
  absl::Time deadline = absl::Now() + timeout;
  absl::Time next_chunk = absl::Now();
  size_t chunk = 0;
  int in_fd = in[1];
  while (absl::Now() < deadline) {
    if (in_fd >= 0 && absl::Now() >= next_chunk) {
      if (chunk < input_chunks.size()) {
        const std::string& c = input_chunks[chunk++];
        size_t done = 0;
        while (done < c.size()) {
          ssize_t n = write(in_fd, c.data() + done, c.size() - done);
          if (n <= 0) break;
          done += n;
        }
        next_chunk = absl::Now() + chunk_interval;
      } else {
        close(in_fd);
        in_fd = -1;
      }
    }
    pollfd fd{master, POLLIN, 0};
    if (poll(&fd, 1, 20) < 0 && errno != EINTR) break;
    if (fd.revents != 0) {
      char buf[4096];
      ssize_t n = read(master, buf, sizeof(buf));
      if (n <= 0) break;  // EIO: the child closed the terminal
      result.out.append(buf, n);
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(master);
  result.exit_code = WaitExit(pid, deadline);
  return result;
}

Background::Background(const std::vector<std::string>& argv, const std::string& stderr_file) {
  int out[2];
  if (!platform::Pipe(out)) return;
  platform::ParentWatch watch = PrepareWatch();
  pid_ = fork();
  if (pid_ == 0) {
    int err = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) dup2(err, STDERR_FILENO);
    dup2(out[1], STDOUT_FILENO);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    Exec(watch, argv, {});
  }
  close(out[1]);
  out_fd_ = out[0];
}

Background::~Background() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
}

std::string Background::ReadUntil(const std::string& marker, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (buffer_.find(marker) == std::string::npos) {
    if (absl::Now() > deadline || out_fd_ < 0) return "";
    pollfd fd{out_fd_, POLLIN, 0};
    if (poll(&fd, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n <= 0) {
      close(out_fd_);
      out_fd_ = -1;
      return "";
    }
    buffer_.append(buf, n);
  }
  return buffer_;
}

int Background::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int code = WaitExit(pid_, absl::Now() + timeout);
  pid_ = -1;
  return code;
}

}  // namespace unipool::testing
