// unipoolctl put, get: a file into the pool and back. Large files show a
// progress bar on a terminal: a real one while the file is read or written,
// and a moving marker while the SDK moves the bytes (it reports no progress
// of its own).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "output.h"
#include "unipool/common/units.h"

ABSL_FLAG(bool, replace, false, "put: overwrite an existing key");
ABSL_FLAG(int, replicas, 1, "put: store this many copies, each on a different node");

namespace unipool::ctl {
namespace {

// Files are read and written in pieces this big, so the bar moves.
constexpr size_t kChunk = 4 << 20;

std::string Errno(std::string_view what, const std::string& path) {
  return absl::StrFormat("%s %s: %s", what, path, std::strerror(errno));
}

// Reads all of `path` ("-": stdin) into *bytes.
absl::Status ReadInput(const std::string& path, std::vector<uint8_t>* bytes) {
  int fd = path == "-" ? STDIN_FILENO : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(Errno("cannot open", path));
  struct stat st {};
  uint64_t size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
  Progress progress(absl::StrFormat("read %s", path), size, /*bytes=*/true);
  bytes->clear();
  bytes->reserve(size);
  absl::Status status;
  while (true) {
    size_t at = bytes->size();
    bytes->resize(at + kChunk);
    ssize_t n = read(fd, bytes->data() + at, kChunk);
    if (n < 0 && errno == EINTR) {
      bytes->resize(at);
      continue;
    }
    if (n < 0) {
      status = absl::DataLossError(Errno("cannot read", path));
      bytes->resize(at);
      break;
    }
    bytes->resize(at + n);
    progress.Set(bytes->size());
    if (n == 0) break;
  }
  if (fd != STDIN_FILENO) close(fd);
  return status;
}

// Writes `bytes` to `path` ("-": stdout).
absl::Status WriteOutput(const std::string& path, const std::vector<uint8_t>& bytes) {
  int fd = path == "-" ? STDOUT_FILENO
                       : open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::PermissionDeniedError(Errno("cannot create", path));
  Progress progress(absl::StrFormat("write %s", path), bytes.size(), /*bytes=*/true);
  size_t done = 0;
  absl::Status status;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, std::min(kChunk, bytes.size() - done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::DataLossError(Errno("cannot write", path));
      break;
    }
    done += n;
    progress.Set(done);
  }
  if (fd != STDOUT_FILENO && close(fd) != 0 && status.ok()) {
    status = absl::DataLossError(Errno("cannot write", path));
  }
  return status;
}

// "4.8 MiB in 0.02 s, 303.0 MiB/s"; just the size for small objects, whose
// rate would only measure round trips.
std::string Throughput(uint64_t bytes, absl::Duration took) {
  if (bytes < (1u << 20)) return FormatSize(bytes);
  double seconds = std::max(1e-6, absl::ToDoubleSeconds(took));
  return absl::StrFormat("%s in %.2f s, %s/s", FormatSize(bytes), seconds,
                         FormatSize(static_cast<uint64_t>(bytes / seconds)));
}

}  // namespace

int PutCommand(Context& ctx) {
  if (ctx.args().size() != 2) return UsageError("put KEY FILE [--replace] [--replicas N]");
  const std::string& key = ctx.args()[0];
  const std::string& path = ctx.args()[1];
  int replicas = absl::GetFlag(FLAGS_replicas);
  if (replicas < 1 || replicas > kMaxReplicas) {
    return BadFlag(absl::StrFormat("--replicas must be 1 to %d, not %d", kMaxReplicas, replicas));
  }
  // Read the file before connecting: a typo in its name needs no directory.
  std::vector<uint8_t> bytes;
  if (absl::Status s = ReadInput(path, &bytes); !s.ok()) return Fail(s);
  if (bytes.empty()) return Fail(absl::StrFormat("%s is empty: objects are 1 byte or more", path));
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return Fail(client.status());
  PutOptions options;
  options.replace = absl::GetFlag(FLAGS_replace);
  options.replicas = replicas;
  absl::Time start = absl::Now();
  absl::Status s;
  {
    Progress progress(absl::StrFormat("put %s", key), 0, /*bytes=*/true);
    progress.Set(bytes.size());
    s = (*client)->Put(key, bytes, options);
  }
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "stored %s: %s\n", key.c_str(),
               Throughput(bytes.size(), absl::Now() - start).c_str());
  return kExitOk;
}

int GetCommand(Context& ctx) {
  if (ctx.args().size() != 2) return UsageError("get KEY FILE");
  const std::string& key = ctx.args()[0];
  const std::string& path = ctx.args()[1];
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return Fail(client.status());
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<uint8_t>> bytes;
  {
    Progress progress(absl::StrFormat("get %s", key), 0, /*bytes=*/true);
    bytes = (*client)->Get(key);
  }
  if (!bytes.ok()) return Fail(bytes.status());
  absl::Duration took = absl::Now() - start;
  if (absl::Status s = WriteOutput(path, *bytes); !s.ok()) return Fail(s);
  if (path != "-") {
    std::fprintf(stderr, "fetched %s: %s\n", key.c_str(), Throughput(bytes->size(), took).c_str());
  }
  return kExitOk;
}

}  // namespace unipool::ctl
