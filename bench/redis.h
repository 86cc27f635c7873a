// The Redis baseline for unipool-bench: Debian's redis-server started on
// loopback with persistence off (as LMCache's default remote backend would
// be deployed for a cache), and a minimal RESP client that gives Redis its
// best case: pipelined commands for a batch, values sent from the caller's
// memory with writev and bulk replies received straight into the caller's
// buffers (no client-side copy; hiredis or redis-py would copy).
//
// Thread safety: a RedisServer is driven from one thread; a RedisConnection
// is used by one thread at a time (one per benchmark thread).
#ifndef UNIPOOL_BENCH_REDIS_H_
#define UNIPOOL_BENCH_REDIS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "unipool/common/socket.h"
#include "unipool/common/stream.h"

namespace unipool::bench {

class RedisServer {
 public:
  // Starts `binary` (e.g. "redis-server") on a free loopback port, with no
  // RDB snapshots and no AOF, logging into `work_dir`; waits until it
  // answers PING. NotFound when the binary is not installed.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(const std::string& binary,
                                                            const std::string& work_dir);
  ~RedisServer();  // SIGTERM, then waits for it
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const std::string& address() const { return address_; }
  // "7.0.15" (from INFO server), for the report.
  const std::string& version() const { return version_; }

 private:
  RedisServer(pid_t pid, std::string address) : pid_(pid), address_(std::move(address)) {}
  pid_t pid_;
  std::string address_;
  std::string version_;
};

class RedisConnection {
 public:
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Open(const std::string& address);

  // SET every key to its value, pipelined: all commands go out, then all
  // replies are read.
  absl::Status BatchSet(std::span<const std::string_view> keys,
                        std::span<const std::span<const uint8_t>> values);
  // GET every key into its buffer (exactly the value's size; a missing key
  // or a size mismatch is an error), pipelined.
  absl::Status BatchGet(std::span<const std::string_view> keys,
                        std::span<const std::span<uint8_t>> buffers);
  // EXISTS over all keys (one command); returns how many exist.
  absl::StatusOr<int64_t> Exists(std::span<const std::string_view> keys);
  // DEL in one command.
  absl::Status Delete(std::span<const std::string_view> keys);
  // Any command, e.g. {"INFO", "server"}; returns the reply's text.
  absl::StatusOr<std::string> Command(std::span<const std::string_view> args);

 private:
  explicit RedisConnection(Fd fd) : fd_(std::move(fd)), buffer_(kBufferBytes) {}
  // Sends the iovecs (in chunks under IOV_MAX).
  absl::Status Send(std::vector<iovec>& iov);
  // One reply line without its CRLF.
  absl::StatusOr<std::string_view> ReadLine();
  // `size` bytes into `into` (the buffered part copied, the rest received
  // directly), then the CRLF after them.
  absl::Status ReadBulk(std::span<uint8_t> into);
  absl::StatusOr<int64_t> ReadInteger();
  absl::Status ReadOk();
  absl::Status Fill();  // receives more into buffer_

  static constexpr size_t kBufferBytes = 64 << 10;
  Fd fd_;
  std::vector<char> buffer_;
  size_t begin_ = 0, end_ = 0;  // unread bytes in buffer_
  std::string line_;            // the last line returned by ReadLine
};

}  // namespace unipool::bench

#endif  // UNIPOOL_BENCH_REDIS_H_
