#include "block_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "xxhash.h"

namespace unipool::llama {
namespace {

constexpr uint64_t kEdgeBytes = 4ull << 20;

std::string Hex(XXH128_hash_t h) { return absl::StrFormat("%016x%016x", h.high64, h.low64); }

// Hashes [offset, offset + n) of `fd` into `state`.
bool HashRange(int fd, uint64_t offset, uint64_t n, XXH3_state_t* state) {
  std::vector<uint8_t> buffer(1 << 20);
  while (n > 0) {
    size_t want = std::min<uint64_t>(n, buffer.size());
    ssize_t got = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (got <= 0) return false;
    XXH3_128bits_update(state, buffer.data(), static_cast<size_t>(got));
    offset += got;
    n -= got;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ModelFileIdentity(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrFormat("cannot open model %s: %s", path, strerror(errno)));
  }
  struct stat st {};
  ::fstat(fd, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  XXH3_128bits_update(state, &size, sizeof(size));
  const uint64_t head = std::min(size, kEdgeBytes);
  const uint64_t tail_at = std::max(head, size - std::min(size, kEdgeBytes));
  bool ok = HashRange(fd, 0, head, state) && HashRange(fd, tail_at, size - tail_at, state);
  XXH128_hash_t hash = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  ::close(fd);
  if (!ok) return absl::NotFoundError(absl::StrCat("cannot read model ", path));
  return absl::StrFormat("%d:%s", size, Hex(hash));
}

std::string FingerprintOf(std::span<const std::string> parts) {
  std::string joined;
  for (const std::string& part : parts) {
    // Length-prefixed, so that parts cannot run into each other.
    absl::StrAppend(&joined, part.size(), ":", part, ";");
  }
  return Hex(XXH3_128bits(joined.data(), joined.size()));
}

std::vector<std::string> ChainKeys(std::string_view prefix, std::string_view fingerprint,
                                   std::span<const int32_t> tokens, size_t block_tokens) {
  std::vector<std::string> keys;
  const size_t blocks = block_tokens == 0 ? 0 : tokens.size() / block_tokens;
  keys.reserve(blocks);
  std::vector<uint8_t> input(16 + block_tokens * sizeof(int32_t));
  XXH128_hash_t parent = XXH3_128bits(fingerprint.data(), fingerprint.size());
  for (size_t b = 0; b < blocks; ++b) {
    std::memcpy(input.data(), &parent, 16);
    std::memcpy(input.data() + 16, tokens.data() + b * block_tokens,
                block_tokens * sizeof(int32_t));
    parent = XXH3_128bits(input.data(), input.size());
    keys.push_back(std::string(prefix) + std::string(fingerprint) + "/" + Hex(parent));
  }
  return keys;
}

}  // namespace unipool::llama
