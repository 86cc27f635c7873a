// HMAC-SHA256 with the key's pads hashed once (RFC 2104): SHA-256's
// low-level interface keeps a state in a plain struct, so a capability is
// issued or checked without a heap allocation (OpenSSL's one-shot HMAC()
// fetches and allocates a context each call). Deprecated in OpenSSL 3 but
// present; the EVP replacement allocates per use.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "unipool/common/capability.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "unipool/pool_types.h"

namespace unipool {
static_assert(sizeof(Capability::mac) == kSecretBytes);

namespace {

constexpr size_t kBlockBytes = 64;  // SHA-256's block
constexpr std::string_view kKeyLabel = "unipool-capability-key-v1";

template <typename T>
void HashValue(SHA256_CTX& ctx, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  SHA256_Update(&ctx, &value, sizeof(value));
}

std::string_view AccessName(wire::Access access) {
  switch (access) {
    case wire::Access::Read:
      return "read";
    case wire::Access::Write:
      return "write";
    case wire::Access::Copy:
      return "copy";
    case wire::Access::FlashRead:
      return "flash read";
    default:
      return "no access";
  }
}

}  // namespace

struct CapabilityKey::HashStates {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

CapabilityKey::CapabilityKey(const Secret& key) {
  auto states = std::make_shared<HashStates>();
  uint8_t pad[kBlockBytes] = {};
  std::memcpy(pad, key.data(), key.size());
  for (uint8_t& b : pad) b ^= 0x36;
  SHA256_Init(&states->inner);
  SHA256_Update(&states->inner, pad, sizeof(pad));
  for (uint8_t& b : pad) b ^= 0x36 ^ 0x5c;
  SHA256_Init(&states->outer);
  SHA256_Update(&states->outer, pad, sizeof(pad));
  OPENSSL_cleanse(pad, sizeof(pad));
  states_ = std::move(states);
}

absl::StatusOr<CapabilityKey> CapabilityKey::FromCredential(const Credential& credential) {
  Secret node_secret;
  if (credential.is_cluster_key) {
    node_secret = TokenSecret(credential.secret, wire::Role::Node, "");
  } else if (credential.role == wire::Role::Node && credential.prefix.empty()) {
    node_secret = credential.secret;
  } else {
    return absl::PermissionDeniedError(
        "only the cluster key or a node token without a prefix can issue or check capabilities");
  }
  return CapabilityKey(unipool::Mac(node_secret, kKeyLabel));
}

Secret CapabilityKey::Mac(const CapabilityUse& use, const Capability& fields) const {
  // Fixed-size fields first and the target address last: no two
  // capabilities hash the same bytes.
  SHA256_CTX ctx = states_->inner;
  HashValue(ctx, use.slab_id);
  HashValue(ctx, fields.offset);
  HashValue(ctx, fields.length);
  HashValue(ctx, fields.access);
  HashValue(ctx, fields.expires_unix_ms);
  if (fields.access == static_cast<uint8_t>(wire::Access::Copy)) {
    HashValue(ctx, use.copy_target_offset);
    SHA256_Update(&ctx, use.copy_target.data(), use.copy_target.size());
  }
  Secret inner_hash;
  SHA256_Final(inner_hash.data(), &ctx);
  ctx = states_->outer;
  SHA256_Update(&ctx, inner_hash.data(), inner_hash.size());
  Secret mac;
  SHA256_Final(mac.data(), &ctx);
  return mac;
}

Capability CapabilityKey::Issue(const CapabilityUse& use, int64_t expires_unix_ms) const {
  Capability capability{
      use.offset, use.length, static_cast<uint8_t>(use.access), expires_unix_ms, {}};
  capability.mac = Mac(use, capability);
  return capability;
}

absl::Status CapabilityKey::Check(const Capability& capability, const CapabilityUse& use,
                                  absl::Time now) const {
  auto refuse = [&](std::string_view why) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s of [%u, +%u) refused: %s", AccessName(use.access), use.offset, use.length, why));
  };
  if (!capability.present()) return refuse("no capability from the directory");
  Secret expected = Mac(use, capability);
  if (CRYPTO_memcmp(expected.data(), capability.mac.data(), expected.size()) != 0) {
    return refuse(use.access == wire::Access::Copy
                      ? "the capability is not the directory's for this node and target"
                      : "the capability is not the directory's for this node");
  }
  if (capability.access != static_cast<uint8_t>(use.access)) {
    return refuse(absl::StrFormat("the capability grants %s",
                                  AccessName(static_cast<wire::Access>(capability.access))));
  }
  if (use.offset < capability.offset || use.length > capability.length ||
      use.offset - capability.offset > capability.length - use.length) {
    return refuse(absl::StrFormat("outside the capability's range [%u, +%u)", capability.offset,
                                  capability.length));
  }
  if (absl::FromUnixMillis(capability.expires_unix_ms) + kCapabilityClockSkew < now) {
    return refuse("the capability expired (look the key up again)");
  }
  return absl::OkStatus();
}

wire::Capability EncodeCapability(const Capability& capability) {
  return wire::Capability(capability.offset, capability.length, capability.expires_unix_ms,
                          flatbuffers::span<const uint8_t, kSecretBytes>(capability.mac),
                          static_cast<wire::Access>(capability.access));
}

Capability DecodeCapability(const wire::Capability* capability) {
  if (capability == nullptr) return {};
  Capability out{capability->offset(),
                 capability->length(),
                 static_cast<uint8_t>(capability->access()),
                 capability->expires_unix_ms(),
                 {}};
  std::memcpy(out.mac.data(), capability->mac()->Data(), out.mac.size());
  return out;
}

flatbuffers::Offset<flatbuffers::Vector<const wire::Capability*>> EncodeCapabilities(
    flatbuffers::FlatBufferBuilder& fbb, std::span<const Capability* const> capabilities) {
  if (capabilities.empty() || capabilities[0] == nullptr || !capabilities[0]->present()) return 0;
  wire::Capability* out = nullptr;
  auto vec = fbb.CreateUninitializedVectorOfStructs(capabilities.size(), &out);
  for (const Capability* capability : capabilities) {
    *out++ = EncodeCapability(capability != nullptr ? *capability : Capability{});
  }
  return vec;
}

}  // namespace unipool
