#include "client_security.h"

#include "unipool/common/status_macros.h"

namespace unipool {

absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientOptions& options) {
  ClientSecurity security;
  ASSIGN_OR_RETURN(security.credential, LoadCredentialFromFlagOrEnv(options.key_file));
  ASSIGN_OR_RETURN(security.tls, LoadTlsClientFromFlagOrEnv(options.tls_ca, options.tls_name));
  return security;
}

}  // namespace unipool
