#include "unipool/common/tls_files.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "unipool/common/tls.h"

namespace unipool {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

constexpr long kValidSeconds = 10L * 365 * 24 * 3600;

absl::Status Failed(const char* what) {
  return absl::InternalError(absl::StrFormat("cannot make the %s: %s", what, TlsErrorText()));
}

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `common_name`, with a random serial, not yet
// signed and without extensions.
Cert NewCertificate(EVP_PKEY* key, const std::string& common_name) {
  Cert cert(X509_new());
  BIGNUM* serial = BN_new();
  bool ok = cert != nullptr && serial != nullptr && BN_rand(serial, 64, 0, 0) == 1 &&
            BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get())) != nullptr &&
            X509_set_version(cert.get(), 2) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidSeconds) != nullptr &&
            X509_set_pubkey(cert.get(), key) == 1 &&
            X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                       -1, -1, 0) == 1;
  BN_free(serial);
  return ok ? std::move(cert) : nullptr;
}

std::string SubjectAltNames(const std::vector<std::string>& hosts) {
  std::vector<std::string> names;
  for (const std::string& host : hosts) {
    unsigned char addr[16];
    bool ip =
        inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
    names.push_back((ip ? "IP:" : "DNS:") + host);
  }
  return absl::StrJoin(names, ",");
}

// `mode` 0600 for keys; O_EXCL: never overwrite.
absl::Status WritePem(const std::string& path, mode_t mode,
                      const std::function<bool(FILE*)>& write) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    auto make = errno == EEXIST ? absl::AlreadyExistsError : absl::FailedPreconditionError;
    return make(absl::StrFormat("cannot write %s: %s", path, std::strerror(errno)));
  }
  FILE* f = ::fdopen(fd, "w");
  bool ok = f != nullptr && write(f);
  if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  if (!ok) return absl::InternalError(absl::StrFormat("cannot write %s", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteTlsFiles(const std::string& dir, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return absl::InvalidArgumentError("a server certificate needs a host");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot create %s: %s", dir, ec.message()));
  for (const char* name : {kTlsCaCert, kTlsCaKey, kTlsServerCert, kTlsServerKey}) {
    if (std::filesystem::exists(dir + "/" + name)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("%s/%s exists: refusing to replace a pool's TLS files", dir, name));
    }
  }
  Pkey ca_key(EVP_EC_gen("P-256")), server_key(EVP_EC_gen("P-256"));
  if (ca_key == nullptr || server_key == nullptr) return Failed("keys");
  Cert ca = NewCertificate(ca_key.get(), "unipool pool CA");
  if (ca == nullptr || X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get())) != 1 ||
      !AddExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE") ||
      !AddExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(ca.get(), ca_key.get(), EVP_sha256()) == 0) {
    return Failed("CA certificate");
  }
  Cert server = NewCertificate(server_key.get(), hosts.front());
  if (server == nullptr ||
      X509_set_issuer_name(server.get(), X509_get_subject_name(ca.get())) != 1 ||
      !AddExtension(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(server.get(), ca.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(server.get(), ca.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExtension(server.get(), ca.get(), NID_subject_alt_name, SubjectAltNames(hosts)) ||
      !AddExtension(server.get(), ca.get(), NID_authority_key_identifier, "keyid") ||
      X509_sign(server.get(), ca_key.get(), EVP_sha256()) == 0) {
    return Failed("server certificate");
  }
  auto key_writer = [](EVP_PKEY* key) {
    return [key](FILE* f) {
      return PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    };
  };
  auto cert_writer = [](X509* cert) {
    return [cert](FILE* f) { return PEM_write_X509(f, cert) == 1; };
  };
  const std::string base = dir + "/";
  if (absl::Status s = WritePem(base + kTlsCaKey, 0600, key_writer(ca_key.get())); !s.ok()) {
    return s;
  }
  if (absl::Status s = WritePem(base + kTlsServerKey, 0600, key_writer(server_key.get()));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WritePem(base + kTlsCaCert, 0644, cert_writer(ca.get())); !s.ok()) {
    return s;
  }
  return WritePem(base + kTlsServerCert, 0644, cert_writer(server.get()));
}

}  // namespace unipool
