// What a client proves and checks on every connection: the key or token
// (auth.h) and, for pools that speak TLS, the CA it trusts (tls.h).
#ifndef UNIPOOL_CLIENT_CLIENT_SECURITY_H_
#define UNIPOOL_CLIENT_CLIENT_SECURITY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "unipool/client.h"
#include "unipool/common/auth.h"
#include "unipool/common/tls.h"

namespace unipool {

struct ClientSecurity {
  std::shared_ptr<const Credential> credential;  // null: none
  std::shared_ptr<const TlsClientConfig> tls;    // null: plain TCP
};

// From options.key_file / $UNIPOOL_KEY_FILE and options.tls_ca /
// $UNIPOOL_TLS_CA (with options.tls_name). FailedPrecondition naming the
// file that cannot be loaded.
absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientOptions& options);

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_CLIENT_SECURITY_H_
