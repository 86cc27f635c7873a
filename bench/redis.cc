#include "redis.h"

#include <limits.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "unipool/common/status_macros.h"
#include "unipool/platform/process.h"

namespace unipool::bench {
namespace {

// A loopback port nobody listens on now (bind port 0, read it, close).
absl::StatusOr<int> FreePort() {
  std::string bound;
  ASSIGN_OR_RETURN(Fd fd, ListenTcp("127.0.0.1:0", &bound));
  ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(bound));
  return hp.port;
}

std::string FindInPath(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return binary;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + binary;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// "$<n>\r\n" etc. for one argument; returns the header.
std::string BulkHeader(size_t size) { return absl::StrFormat("$%u\r\n", size); }

constexpr char kCrlf[] = "\r\n";

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(const std::string& binary,
                                                                const std::string& work_dir) {
  std::string path = FindInPath(binary);
  if (path.empty()) {
    return absl::NotFoundError(absl::StrFormat(
        "%s not found (Debian: apt-get install redis-server; bench/run.sh does it)", binary));
  }
  ASSIGN_OR_RETURN(int port, FreePort());
  std::filesystem::create_directories(work_dir);
  std::vector<std::string> args = {path,
                                   "--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--protected-mode",
                                   "no",
                                   "--daemonize",
                                   "no",
                                   "--dir",
                                   work_dir,
                                   "--logfile",
                                   work_dir + "/redis.log"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ASSIGN_OR_RETURN(platform::ParentWatch watch, platform::PrepareParentWatch());
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrFormat("fork: %s", std::strerror(errno)));
  if (pid == 0) {
    // Dies with the benchmark, however it ends.
    platform::DieWithParent(watch);
    execv(argv[0], argv.data());
    _exit(127);
  }
  auto server =
      std::unique_ptr<RedisServer>(new RedisServer(pid, absl::StrFormat("127.0.0.1:%d", port)));
  // Up to 10 s for it to answer.
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto conn = RedisConnection::Open(server->address_);
    if (conn.ok()) {
      std::string_view info_args[] = {"INFO", "server"};
      auto info = (*conn)->Command(info_args);
      if (info.ok()) {
        size_t at = info->find("redis_version:");
        if (at != std::string::npos) {
          size_t end = info->find_first_of("\r\n", at);
          server->version_ = info->substr(at + 14, end - at - 14);
        }
        return server;
      }
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      return absl::InternalError(
          absl::StrFormat("%s exited at start (see %s/redis.log)", path, work_dir));
    }
    usleep(50000);
  }
  return absl::DeadlineExceededError("redis-server did not answer within 10 s");
}

RedisServer::~RedisServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Open(const std::string& address) {
  // The same socket options as unipool's client connections.
  ASSIGN_OR_RETURN(Fd fd, DialTcp(address, absl::Seconds(3), absl::Seconds(120)));
  return std::unique_ptr<RedisConnection>(new RedisConnection(std::move(fd)));
}

absl::Status RedisConnection::Send(std::vector<iovec>& iov) {
  for (size_t first = 0; first < iov.size(); first += IOV_MAX) {
    size_t n = std::min<size_t>(IOV_MAX, iov.size() - first);
    RETURN_IF_ERROR(SendAll(Stream{.fd = fd_.get()}, std::span<iovec>(iov.data() + first, n)));
  }
  return absl::OkStatus();
}

absl::Status RedisConnection::Fill() {
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ == buffer_.size()) {
    if (begin_ == 0) return absl::InternalError("redis reply line longer than the buffer");
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  ssize_t got;
  do {
    got = recv(fd_.get(), buffer_.data() + end_, buffer_.size() - end_, 0);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    return absl::UnavailableError(
        absl::StrFormat("redis: %s", got == 0 ? "connection closed" : std::strerror(errno)));
  }
  end_ += got;
  return absl::OkStatus();
}

absl::StatusOr<std::string_view> RedisConnection::ReadLine() {
  size_t scanned = begin_;
  while (true) {
    for (size_t i = scanned; i + 1 < end_; ++i) {
      if (buffer_[i] == '\r' && buffer_[i + 1] == '\n') {
        line_.assign(buffer_.data() + begin_, i - begin_);
        begin_ = i + 2;
        if (!line_.empty() && line_[0] == '-') return absl::InternalError("redis: " + line_);
        return std::string_view(line_);
      }
    }
    size_t offset = end_ > begin_ ? end_ - begin_ - 1 : 0;
    RETURN_IF_ERROR(Fill());
    scanned = begin_ + offset;
  }
}

absl::Status RedisConnection::ReadBulk(std::span<uint8_t> into) {
  size_t done = std::min(into.size(), end_ - begin_);
  std::memcpy(into.data(), buffer_.data() + begin_, done);
  begin_ += done;
  while (done < into.size()) {
    ssize_t got = recv(fd_.get(), into.data() + done, into.size() - done, MSG_WAITALL);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return absl::UnavailableError("redis: connection closed inside a value");
    done += got;
  }
  while (end_ - begin_ < 2) RETURN_IF_ERROR(Fill());
  if (buffer_[begin_] != '\r' || buffer_[begin_ + 1] != '\n') {
    return absl::InternalError("redis: bulk reply not followed by CRLF");
  }
  begin_ += 2;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RedisConnection::ReadInteger() {
  ASSIGN_OR_RETURN(std::string_view line, ReadLine());
  int64_t value = 0;
  if (line.empty() || line[0] != ':' ||
      !absl::SimpleAtoi(absl::string_view(line.data() + 1, line.size() - 1), &value)) {
    return absl::InternalError(absl::StrFormat("redis: expected an integer, got '%s'", line));
  }
  return value;
}

absl::Status RedisConnection::ReadOk() {
  ASSIGN_OR_RETURN(std::string_view line, ReadLine());
  if (line != "+OK")
    return absl::InternalError(absl::StrFormat("redis: expected +OK, got '%s'", line));
  return absl::OkStatus();
}

namespace {

// Appends "*n\r\n" and the bulk headers of a command whose arguments are
// `head` followed by one caller-owned value (not copied).
struct CommandBuilder {
  std::vector<std::string> owned;  // headers; stable addresses via reserve
  std::vector<iovec> iov;

  explicit CommandBuilder(size_t commands, size_t parts) {
    owned.reserve(commands * parts + 1);
    iov.reserve(commands * parts * 2 + 1);
  }
  void Text(std::string text) {
    owned.push_back(std::move(text));
    iov.push_back({owned.back().data(), owned.back().size()});
  }
  void Bytes(const void* data, size_t size) {
    Text(BulkHeader(size));
    if (size > 0) iov.push_back({const_cast<void*>(data), size});
    iov.push_back({const_cast<char*>(kCrlf), 2});
  }
};

}  // namespace

absl::Status RedisConnection::BatchSet(std::span<const std::string_view> keys,
                                       std::span<const std::span<const uint8_t>> values) {
  CommandBuilder b(keys.size(), 4);
  for (size_t i = 0; i < keys.size(); ++i) {
    b.Text("*3\r\n$3\r\nSET\r\n");
    b.Bytes(keys[i].data(), keys[i].size());
    b.Bytes(values[i].data(), values[i].size());
  }
  RETURN_IF_ERROR(Send(b.iov));
  for (size_t i = 0; i < keys.size(); ++i) RETURN_IF_ERROR(ReadOk());
  return absl::OkStatus();
}

absl::Status RedisConnection::BatchGet(std::span<const std::string_view> keys,
                                       std::span<const std::span<uint8_t>> buffers) {
  CommandBuilder b(keys.size(), 3);
  for (std::string_view key : keys) {
    b.Text("*2\r\n$3\r\nGET\r\n");
    b.Bytes(key.data(), key.size());
  }
  RETURN_IF_ERROR(Send(b.iov));
  absl::Status first_error;
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSIGN_OR_RETURN(std::string_view line, ReadLine());
    int64_t size = -1;
    if (line.empty() || line[0] != '$' ||
        !absl::SimpleAtoi(absl::string_view(line.data() + 1, line.size() - 1), &size)) {
      return absl::InternalError(absl::StrFormat("redis: expected a bulk reply, got '%s'", line));
    }
    if (size < 0) {
      if (first_error.ok()) first_error = absl::NotFoundError(std::string(keys[i]));
      continue;
    }
    if (static_cast<uint64_t>(size) != buffers[i].size()) {
      // Drain it to keep the stream in step, then report.
      std::vector<uint8_t> sink(size);
      RETURN_IF_ERROR(ReadBulk(sink));
      if (first_error.ok()) {
        first_error = absl::InternalError(absl::StrFormat("redis: %s has %d bytes, expected %u",
                                                          keys[i], size, buffers[i].size()));
      }
      continue;
    }
    RETURN_IF_ERROR(ReadBulk(buffers[i]));
  }
  return first_error;
}

absl::StatusOr<int64_t> RedisConnection::Exists(std::span<const std::string_view> keys) {
  CommandBuilder b(keys.size() + 1, 2);
  b.Text(absl::StrFormat("*%u\r\n$6\r\nEXISTS\r\n", keys.size() + 1));
  for (std::string_view key : keys) b.Bytes(key.data(), key.size());
  RETURN_IF_ERROR(Send(b.iov));
  return ReadInteger();
}

absl::Status RedisConnection::Delete(std::span<const std::string_view> keys) {
  if (keys.empty()) return absl::OkStatus();
  CommandBuilder b(keys.size() + 1, 2);
  b.Text(absl::StrFormat("*%u\r\n$3\r\nDEL\r\n", keys.size() + 1));
  for (std::string_view key : keys) b.Bytes(key.data(), key.size());
  RETURN_IF_ERROR(Send(b.iov));
  return ReadInteger().status();
}

absl::StatusOr<std::string> RedisConnection::Command(std::span<const std::string_view> args) {
  CommandBuilder b(args.size() + 1, 2);
  b.Text(absl::StrFormat("*%u\r\n", args.size()));
  for (std::string_view a : args) b.Bytes(a.data(), a.size());
  RETURN_IF_ERROR(Send(b.iov));
  ASSIGN_OR_RETURN(std::string_view line, ReadLine());
  if (!line.empty() && line[0] == '$') {
    int64_t size = 0;
    if (!absl::SimpleAtoi(absl::string_view(line.data() + 1, line.size() - 1), &size) || size < 0) {
      return std::string();
    }
    std::string text(size, '\0');
    RETURN_IF_ERROR(ReadBulk({reinterpret_cast<uint8_t*>(text.data()), text.size()}));
    return text;
  }
  return std::string(line);
}

}  // namespace unipool::bench
