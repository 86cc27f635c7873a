// Command-line flags shared by the programs that run a FrameServer
// (unipool-directory, unipool-node): connection caps, timeouts, the cluster
// key (--key-file, also made this process's credential) and --insecure.
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
