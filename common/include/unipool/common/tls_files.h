// Makes the files a TLS pool needs (tls.h) with OpenSSL, so operators and
// tests need no other tool and no network: a private CA and one server
// certificate it signs, for every directory and node of the pool.
#ifndef UNIPOOL_COMMON_TLS_FILES_H_
#define UNIPOOL_COMMON_TLS_FILES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace unipool {

// Files written into the folder given to WriteTlsFiles.
inline constexpr char kTlsCaCert[] = "ca.pem";          // for --tls-ca, $UNIPOOL_TLS_CA
inline constexpr char kTlsCaKey[] = "ca.key";           // keep offline: signs certificates
inline constexpr char kTlsServerCert[] = "server.pem";  // for --tls-cert
inline constexpr char kTlsServerKey[] = "server.key";   // for --tls-key

// Creates `dir` if needed and writes a new CA (P-256, valid 10 years) and a
// server certificate it signs, valid for each of `hosts` (names or IP
// addresses: every address clients dial the servers at). Keys are mode
// 0600. Refuses to overwrite existing files (AlreadyExists).
absl::Status WriteTlsFiles(const std::string& dir, const std::vector<std::string>& hosts);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_TLS_FILES_H_
