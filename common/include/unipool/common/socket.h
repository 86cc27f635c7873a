// TCP sockets: listen and dial. Reading and writing: stream.h.
#ifndef UNIPOOL_COMMON_SOCKET_H_
#define UNIPOOL_COMMON_SOCKET_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "unipool/platform/fd.h"

namespace unipool {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Parses "HOST:PORT" (HOST may be a name, an IPv4 address or [IPv6]).
absl::StatusOr<HostPort> ParseHostPort(std::string_view address);

// Listens on `address`; port 0 picks a free port. The address actually bound
// is returned in *bound (e.g. "127.0.0.1:40123").
absl::StatusOr<Fd> ListenTcp(std::string_view address, std::string* bound);

// Connects with a timeout; sets TCP_NODELAY and, when io_timeout is finite,
// send/receive timeouts so a dead peer cannot hang the caller forever.
// Failure is Unavailable (the caller may retry).
absl::StatusOr<Fd> DialTcp(std::string_view address, absl::Duration connect_timeout,
                           absl::Duration io_timeout);

// Applies TCP_NODELAY and large buffers to an accepted socket.
void TuneSocket(int fd);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_SOCKET_H_
