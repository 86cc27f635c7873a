// Capabilities on the data path: the directory's leave to read, write or
// copy one range of one node's slab, which the node checks before touching it.
//
// A capability names a range (offset, length) of the slab whose id is
// `slab_id` (random per slab lifetime, so a capability is worthless on
// another node and after a node lost its memory), an access and an expiry
// (unix ms), and carries HMAC-SHA256 over all of them under the capability
// key. A Copy capability's MAC also binds the copy's target (address and
// offset), so a node sends bytes only where the directory said. The
// capability key is derived from the cluster key through the node token's
// secret: a node started with the cluster key and one started with a node
// token (no prefix) hold the same key; clients, who hold neither, cannot
// make one. The directory issues write capabilities with every reservation
// (valid for the reservation's lease), read capabilities with every lookup
// (kReadCapabilityLifetime by default), and copy capabilities with every copy it orders.
// It never reuses memory while a capability issued for it still works
// (directory.h, the held-space rule).
//
// Clocks: expiries are absolute, so the directory's and the nodes' clocks
// must agree within kCapabilityClockSkew.
//
// Pools without a key issue and check none (access None).
#ifndef UNIPOOL_COMMON_CAPABILITY_H_
#define UNIPOOL_COMMON_CAPABILITY_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "unipool/common/auth.h"

namespace unipool {

// Expiries are honoured this long after they pass (the directory's and the
// node's clocks may differ this much).
inline constexpr absl::Duration kCapabilityClockSkew = absl::Seconds(5);
// How long a lookup's read capabilities last by default; a client whose
// capability expired looks the key up again and retries.
inline constexpr absl::Duration kReadCapabilityLifetime = absl::Seconds(10);

// Defined in unipool/pool_types.h (the SDK's public types; its `access` is
// a wire::Access, its `mac` kSecretBytes long).
struct Capability;

// What a capability is checked against (or issued for): the access to
// [offset, offset + length) of slab `slab_id`; for a Copy, to
// `copy_target`'s slab at `copy_target_offset`.
struct CapabilityUse {
  uint64_t slab_id = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  wire::Access access = wire::Access::Read;
  std::string_view copy_target;
  uint64_t copy_target_offset = 0;
};

// The pool's capability key with HMAC's inner and outer hash states computed
// once, so that issuing or checking one costs two SHA-256 compressions of
// a few dozen bytes and allocates nothing.
//
// Thread safety: immutable after construction; thread-safe.
class CapabilityKey {
 public:
  // The key of a pool member holding `credential`: the cluster key or a
  // node token with no prefix. PermissionDenied for other credentials
  // (client and admin tokens, node tokens limited to a prefix), which
  // cannot issue or check capabilities.
  static absl::StatusOr<CapabilityKey> FromCredential(const Credential& credential);

  // Leave for `use` until `expires_unix_ms`.
  Capability Issue(const CapabilityUse& use, int64_t expires_unix_ms) const;
  // OK when `capability` is genuine, grants `use.access` on `use.slab_id`
  // (for a Copy: to exactly `use`'s target), covers [use.offset,
  // use.offset + use.length) and has not expired at `now`; otherwise
  // PermissionDenied in one line saying which of these failed.
  absl::Status Check(const Capability& capability, const CapabilityUse& use, absl::Time now) const;

 private:
  struct HashStates;  // SHA-256 states after the key's inner and outer pads
  explicit CapabilityKey(const Secret& key);
  // HMAC of the capability's fields, with the range and target of `use`.
  Secret Mac(const CapabilityUse& use, const Capability& fields) const;

  std::shared_ptr<const HashStates> states_;
};

// FlatBuffers at the edge.
wire::Capability EncodeCapability(const Capability& capability);
// Null (an absent field) decodes to no capability.
Capability DecodeCapability(const wire::Capability* capability);
// A request's capabilities field: one per range, in order (null: none for
// that range), or no field at all (offset 0) when the first range has none,
// as in a pool without a key.
flatbuffers::Offset<flatbuffers::Vector<const wire::Capability*>> EncodeCapabilities(
    flatbuffers::FlatBufferBuilder& fbb, std::span<const Capability* const> capabilities);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_CAPABILITY_H_
