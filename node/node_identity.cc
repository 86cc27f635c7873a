#include "unipool/node/node_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "unipool/common/auth.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

constexpr size_t kMaxStateFileBytes = 256;

// The file's first line; NotFound when it does not exist.
absl::StatusOr<std::string> ReadLine(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(path);
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot read node state %s: %s", path, std::strerror(errno)));
  }
  std::string line;
  std::getline(in, line);
  if (line.size() > kMaxStateFileBytes) {
    return absl::FailedPreconditionError(absl::StrFormat("node state %s is malformed", path));
  }
  return std::string(absl::StripAsciiWhitespace(line));
}

// Writes `text` to `path` (mode 0600) through a temporary file and a rename.
absl::Status WritePrivate(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot write node state %s: %s", tmp, std::strerror(errno)));
  }
  std::string line = text + "\n";
  bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot write node state %s: %s", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string NodeIdentity::DefaultDir(const std::string& name) {
  std::string base;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg != '\0') {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    base = std::string(home) + "/.local/state";
  } else {
    return "";
  }
  std::string safe = name;
  for (char& c : safe) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return base + "/unipool/node-" + safe;
}

absl::StatusOr<NodeIdentity> NodeIdentity::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot create node state folder %s: %s", dir, ec.message()));
  }
  chmod(dir.c_str(), 0700);
  NodeIdentity state;
  state.dir_ = dir;
  std::string identity_path = dir + "/identity";
  absl::StatusOr<std::string> hex = ReadLine(identity_path);
  if (absl::IsNotFound(hex.status())) {
    Nonce random = RandomNonce();
    hex = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
    RETURN_IF_ERROR(WritePrivate(identity_path, *hex));
  }
  if (!hex.ok()) return hex.status();
  state.identity_ = absl::HexStringToBytes(*hex);
  if (hex->size() != 2 * kSecretBytes ||
      absl::BytesToHexString(state.identity_) != absl::AsciiStrToLower(*hex)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("node identity %s is malformed (64 hex digits expected)", identity_path));
  }
  absl::StatusOr<std::string> pool = ReadLine(dir + "/pool_id");
  if (pool.ok()) {
    state.pool_id_ = *pool;
  } else if (!absl::IsNotFound(pool.status())) {
    return pool.status();
  }
  return state;
}

absl::Status NodeIdentity::RememberPool(const std::string& pool_id) {
  if (pool_id.empty() || pool_id == pool_id_) return absl::OkStatus();
  RETURN_IF_ERROR(WritePrivate(dir_ + "/pool_id", pool_id));
  pool_id_ = pool_id;
  return absl::OkStatus();
}

}  // namespace unipool
