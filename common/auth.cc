#include "unipool/common/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "unipool/common/socket.h"

namespace unipool {
namespace {

constexpr char kKeyTag[] = "unipool-cluster-key-v1";
constexpr char kTokenTag[] = "unipool-token-v1";
constexpr char kQuotaTokenTag[] = "unipool-token-v2";  // a token with quotas

absl::Mutex process_mu;
std::shared_ptr<const Credential> process_credential ABSL_GUARDED_BY(process_mu);

std::string_view View(const auto& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Hex text of exactly `bytes` bytes, or false.
bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = absl::HexStringToBytes(absl::string_view(hex.data(), hex.size()));
  return true;
}

absl::StatusOr<wire::Role> RoleFromName(std::string_view name) {
  if (name == "client") return wire::Role::Client;
  if (name == "node") return wire::Role::Node;
  if (name == "admin") return wire::Role::Admin;
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown role '%s' (client, node or admin)", name));
}

std::string RoleName(wire::Role role) { return absl::AsciiStrToLower(wire::EnumNameRole(role)); }

}  // namespace

absl::StatusOr<Credential> NewClusterKey() {
  Credential key;
  key.is_cluster_key = true;
  if (RAND_bytes(key.secret.data(), key.secret.size()) != 1) {
    return absl::InternalError("the system's random source failed (OpenSSL RAND_bytes)");
  }
  return key;
}

absl::StatusOr<Credential> NewToken(const Credential& cluster, wire::Role role,
                                    std::string_view prefix, const TenantQuota& quota) {
  if (!cluster.is_cluster_key) {
    return absl::FailedPreconditionError("a token is made from the cluster key, not from a token");
  }
  if (quota.any() && (prefix.empty() || role == wire::Role::Node)) {
    return absl::InvalidArgumentError(
        "quotas belong to a tenant: give the token a prefix (and a client or admin role)");
  }
  Credential token;
  token.role = role;
  token.prefix = std::string(prefix);
  token.quota = quota;
  token.secret = TokenSecret(cluster.secret, role, prefix, quota);
  return token;
}

std::string FormatCredential(const Credential& credential) {
  std::string secret = absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(credential.secret.data()), credential.secret.size()));
  if (credential.is_cluster_key) return absl::StrFormat("%s %s\n", kKeyTag, secret);
  std::string prefix = credential.prefix.empty()
                           ? "-"
                           : absl::BytesToHexString(absl::string_view(credential.prefix));
  if (credential.quota.any()) {
    const TenantQuota& q = credential.quota;
    return absl::StrFormat("%s %s %s %u %u %u %s\n", kQuotaTokenTag, RoleName(credential.role),
                           prefix, q.storage_bytes, q.pin_bytes, q.reservation_bytes, secret);
  }
  return absl::StrFormat("%s %s %s %s\n", kTokenTag, RoleName(credential.role), prefix, secret);
}

absl::StatusOr<Credential> ParseCredential(std::string_view text) {
  std::vector<std::string> words =
      absl::StrSplit(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())), ' ',
                     absl::SkipEmpty());
  Credential credential;
  std::string secret_hex;
  if (words.size() == 2 && words[0] == kKeyTag) {
    credential.is_cluster_key = true;
    secret_hex = words[1];
  } else if ((words.size() == 4 && words[0] == kTokenTag) ||
             (words.size() == 7 && words[0] == kQuotaTokenTag)) {
    auto role = RoleFromName(words[1]);
    if (!role.ok()) return role.status();
    credential.role = *role;
    if (words[2] != "-" && !FromHex(words[2], &credential.prefix)) {
      return absl::InvalidArgumentError("token's prefix is not hex");
    }
    if (words.size() == 7) {
      TenantQuota& q = credential.quota;
      if (!absl::SimpleAtoi(words[3], &q.storage_bytes) ||
          !absl::SimpleAtoi(words[4], &q.pin_bytes) ||
          !absl::SimpleAtoi(words[5], &q.reservation_bytes)) {
        return absl::InvalidArgumentError("token's quotas are not byte counts");
      }
    }
    secret_hex = words.back();
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "not a unipool key or token (expected '%s HEX', '%s ROLE PREFIX HEX' or '%s ROLE PREFIX "
        "STORAGE PIN RESERVATION HEX')",
        kKeyTag, kTokenTag, kQuotaTokenTag));
  }
  std::string secret;
  if (!FromHex(secret_hex, &secret) || secret.size() != kSecretBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the secret must be %d hex digits", 2 * kSecretBytes));
  }
  std::copy(secret.begin(), secret.end(), credential.secret.begin());
  return credential;
}

absl::Status WriteCredentialFile(const std::string& path, const Credential& credential) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot create key file %s: %s", path, std::strerror(errno)));
  }
  std::string text = FormatCredential(credential);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd.get()) != 0) {
    return absl::InternalError(
        absl::StrFormat("cannot write key file %s: %s", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Credential> LoadCredentialFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot read key file %s: %s", path, std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("key file %s may be read by others (mode %04o): run chmod 600 %s", path,
                        st.st_mode & 07777, path));
  }
  char buffer[512];
  ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  if (n <= 0) return absl::FailedPreconditionError("key file " + path + " is empty");
  auto credential = ParseCredential(std::string_view(buffer, static_cast<size_t>(n)));
  if (!credential.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("key file %s: %s", path, credential.status().message()));
  }
  return credential;
}

absl::StatusOr<std::shared_ptr<const Credential>> LoadCredentialFromFlagOrEnv(
    const std::string& path) {
  std::string chosen = path;
  if (chosen.empty()) {
    const char* env = std::getenv("UNIPOOL_KEY_FILE");
    if (env != nullptr) chosen = env;
  }
  if (chosen.empty()) return std::shared_ptr<const Credential>();
  auto credential = LoadCredentialFile(chosen);
  if (!credential.ok()) return credential.status();
  return std::make_shared<const Credential>(*credential);
}

void SetProcessCredential(std::shared_ptr<const Credential> credential) {
  absl::MutexLock lock(&process_mu);
  process_credential = std::move(credential);
}

std::shared_ptr<const Credential> ProcessCredential() {
  absl::MutexLock lock(&process_mu);
  return process_credential;
}

Secret Mac(const Secret& key, std::string_view message) {
  Secret out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), key.size(), reinterpret_cast<const uint8_t*>(message.data()),
       message.size(), out.data(), &length);
  return out;
}

bool BytesMatch(std::string_view expected, std::string_view received) {
  return expected.size() == received.size() &&
         CRYPTO_memcmp(expected.data(), received.data(), expected.size()) == 0;
}

Nonce RandomNonce() {
  Nonce nonce{};
  if (RAND_bytes(nonce.data(), nonce.size()) != 1) std::abort();  // no randomness: nothing is safe
  return nonce;
}

uint64_t RandomU64() {
  uint64_t id = 0;
  while (id == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof(id)) != 1) std::abort();
  }
  return id;
}

Secret TokenSecret(const Secret& cluster_key, wire::Role role, std::string_view prefix,
                   const TenantQuota& quota) {
  // Tokens without quotas keep the first form, so tokens made before quotas
  // stay valid. The distinct tags keep the two forms from ever encoding
  // alike; the prefix (any bytes) comes last.
  std::string message =
      quota.any() ? absl::StrFormat("%s|%s|%u|%u|%u|", kQuotaTokenTag, RoleName(role),
                                    quota.storage_bytes, quota.pin_bytes, quota.reservation_bytes)
                  : absl::StrFormat("%s|%s|", kTokenTag, RoleName(role));
  message.append(prefix);
  return Mac(cluster_key, message);
}

Secret HandshakeProof(const Secret& secret, ProofSide side, wire::Role role,
                      std::string_view prefix, bool token, const Nonce& client_nonce,
                      const Nonce& server_nonce) {
  // Fixed-size fields first; the prefix (any bytes) last, so no two
  // transcripts encode alike.
  std::string message =
      side == ProofSide::kServer ? "unipool-hello-v1 server|" : "unipool-hello-v1 client|";
  message += RoleName(role);
  message += token ? "|token|" : "|key|";
  message.append(View(client_nonce));
  message.append(View(server_nonce));
  message.append(prefix);
  return Mac(secret, message);
}

bool ProofMatches(const Secret& expected, const flatbuffers::Vector<uint8_t>* received) {
  return received != nullptr && received->size() == expected.size() &&
         CRYPTO_memcmp(expected.data(), received->data(), expected.size()) == 0;
}

}  // namespace unipool
