// Command-line flags shared by the programs that run a FrameServer
// (unipool-directory, unipool-node): connection caps, timeouts, the cluster
// key (--key-file, also made this process's credential), --insecure and
// TLS (--tls-cert, --tls-key, --tls-ca, --tls-name; the CA is made this
// process's for its own connections, tls.h).
#ifndef UNIPOOL_COMMON_SERVER_FLAGS_H_
#define UNIPOOL_COMMON_SERVER_FLAGS_H_

#include <string>
#include <string_view>

#include "unipool/common/server.h"

namespace unipool {

// ServerOptions named `name`, from the flags. Exits with status 2 and one
// line naming the flag when a value is out of range.
ServerOptions ServerOptionsFromFlags(std::string_view program, std::string name);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SERVER_FLAGS_H_
