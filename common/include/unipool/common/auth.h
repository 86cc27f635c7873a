// The cluster key, tokens derived from it, and the proofs of the Hello
// handshake (HMAC-SHA256, OpenSSL).
//
// A pool has one cluster key: 32 random bytes in a file readable only by its
// owner (`unipoolctl keygen`). The directory and the nodes hold it; so may
// trusted admins and clients. A token names a role (client, node, admin) and
// optionally a key prefix (a tenant) and the tenant's quotas, and carries a
// secret derived from the cluster key: HMAC(cluster key, "unipool-token-v1" |
// role | prefix), or, for a token with quotas, HMAC(cluster key,
// "unipool-token-v2" | role | storage | pin | reservation | prefix). A
// server, holding the cluster key, derives the same secret from the role,
// prefix and quotas a peer claims, so tokens need no list on the server and a
// holder cannot raise its own quotas.
//
// Handshake (schema/FORMATS.md): the client's Hello carries a fresh nonce,
// its role, prefix and whether it uses a token; the server answers with its
// own nonce and a proof; the client checks it and sends its proof. A proof is
// HMAC(secret, label | role | prefix | token? | client nonce | server nonce),
// with distinct labels for the two sides, so neither a proof nor the secret
// ever crosses the wire twice, and a recorded exchange proves nothing on a new
// connection (the other side's nonce is new).
#ifndef UNIPOOL_COMMON_AUTH_H_
#define UNIPOOL_COMMON_AUTH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "schema/unipool_generated.h"

namespace unipool {

inline constexpr size_t kSecretBytes = 32;
inline constexpr size_t kNonceBytes = 32;
using Secret = std::array<uint8_t, kSecretBytes>;
using Nonce = std::array<uint8_t, kNonceBytes>;

// What a tenant's token lets it hold, each in allocated bytes (an object's
// length rounded up to the allocation unit, times its copies), so that a
// one-byte object costs what it takes. 0: the directory's default
// (--tenant-storage-quota, --tenant-pin-quota, --client-reserve-share).
struct TenantQuota {
  uint64_t storage_bytes = 0;      // committed objects; over it, its own coldest go first
  uint64_t pin_bytes = 0;          // pinned objects; a pin past it is refused
  uint64_t reservation_bytes = 0;  // uncommitted reservations
  bool any() const { return storage_bytes != 0 || pin_bytes != 0 || reservation_bytes != 0; }
  bool operator==(const TenantQuota&) const = default;
};

// What a key file holds: the cluster key itself (which may act in any role
// and on any key), or a token.
struct Credential {
  bool is_cluster_key = false;
  wire::Role role = wire::Role::Client;  // a token's role
  std::string prefix;                    // a token's key prefix; empty: every key
  TenantQuota quota;                     // a token's quotas (tokens with a prefix)
  Secret secret{};                       // the cluster key, or the token's secret
};

// Who a peer proved to be.
struct Principal {
  bool authenticated = false;  // false: the server has no key (loopback or --insecure)
  bool cluster_key = false;    // holds the cluster key: every right
  wire::Role role = wire::Role::Client;
  std::string prefix;  // keys it may touch (tokens); empty: all
  TenantQuota quota;   // its token's quotas (0: the server's defaults)
};

// A new cluster key (from the system's random source).
absl::StatusOr<Credential> NewClusterKey();
// A token for `role`, `prefix` and `quota`, derived from `cluster`, which
// must be the cluster key. InvalidArgument for quotas without a prefix (no
// tenant to hold to them) or on a node token.
absl::StatusOr<Credential> NewToken(const Credential& cluster, wire::Role role,
                                    std::string_view prefix, const TenantQuota& quota = {});

// One line of text, as stored in a key file.
std::string FormatCredential(const Credential& credential);
absl::StatusOr<Credential> ParseCredential(std::string_view text);

// Writes a new file readable only by its owner (mode 0600); refuses to
// overwrite one that exists.
absl::Status WriteCredentialFile(const std::string& path, const Credential& credential);
// Reads a key file; FailedPrecondition when the group or others may read it
// (the message says to chmod 600) or it is malformed.
absl::StatusOr<Credential> LoadCredentialFile(const std::string& path);
// `path`, else $UNIPOOL_KEY_FILE, else none (nullptr).
absl::StatusOr<std::shared_ptr<const Credential>> LoadCredentialFromFlagOrEnv(
    const std::string& path);

// The credential this process's own outgoing connections use by default
// (set once by main from --key-file, before any thread starts).
void SetProcessCredential(std::shared_ptr<const Credential> credential);
std::shared_ptr<const Credential> ProcessCredential();

Nonce RandomNonce();
// 64 random bits from the system's CSPRNG (OpenSSL), never 0: an id nobody
// can guess from the ids they were given.
uint64_t RandomU64();
// HMAC-SHA256 of `message` under `key`.
Secret Mac(const Secret& key, std::string_view message);
// Constant-time comparison of two byte strings (false when lengths differ).
bool BytesMatch(std::string_view expected, std::string_view received);
Secret TokenSecret(const Secret& cluster_key, wire::Role role, std::string_view prefix,
                   const TenantQuota& quota = {});
enum class ProofSide { kServer, kClient };
Secret HandshakeProof(const Secret& secret, ProofSide side, wire::Role role,
                      std::string_view prefix, bool token, const Nonce& client_nonce,
                      const Nonce& server_nonce);
// Constant-time comparison of a received proof.
bool ProofMatches(const Secret& expected, const flatbuffers::Vector<uint8_t>* received);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_AUTH_H_
