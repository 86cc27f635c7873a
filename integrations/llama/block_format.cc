#include "block_format.h"

#include <cstring>

#include "absl/status/status.h"
#include "xxhash.h"

namespace unipool::llama {
namespace {

constexpr uint32_t kMagic = 0x424c5055;  // "UPLB"
constexpr uint32_t kVersion = 1;

struct Header {
  uint32_t magic;
  uint32_t version;
  uint32_t tokens;
  uint32_t reserved;
  uint64_t payload_bytes;
  uint64_t checksum;
};
static_assert(sizeof(Header) == kBlockHeaderBytes);

uint64_t Checksum(std::string_view key, std::span<const uint8_t> payload) {
  return XXH3_64bits_withSeed(payload.data(), payload.size(), XXH3_64bits(key.data(), key.size()));
}

}  // namespace

void SealBlock(std::string_view key, uint32_t tokens, std::span<uint8_t> value) {
  std::span<const uint8_t> payload = value.subspan(kBlockHeaderBytes);
  Header header{kMagic, kVersion, tokens, 0, payload.size(), Checksum(key, payload)};
  std::memcpy(value.data(), &header, sizeof(header));
}

absl::StatusOr<std::span<const uint8_t>> OpenBlock(std::string_view key, uint32_t tokens,
                                                   size_t payload_bytes,
                                                   std::span<const uint8_t> value) {
  if (value.size() != kBlockHeaderBytes + payload_bytes) {
    return absl::DataLossError("block of the wrong size");
  }
  Header header;
  std::memcpy(&header, value.data(), sizeof(header));
  std::span<const uint8_t> payload = value.subspan(kBlockHeaderBytes);
  if (header.magic != kMagic || header.version != kVersion || header.tokens != tokens ||
      header.payload_bytes != payload_bytes) {
    return absl::DataLossError("block header does not match this layout");
  }
  if (header.checksum != Checksum(key, payload)) return absl::DataLossError("block checksum");
  return payload;
}

}  // namespace unipool::llama
