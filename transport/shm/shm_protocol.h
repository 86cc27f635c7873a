// The same-host path's handshake: a pool node hands its slab (a memfd or a
// POSIX shared-memory object) to clients on its own machine over a Unix
// socket, with SCM_RIGHTS; they map it and copy pages directly, so the
// node's CPU does nothing for their gets and puts.
//
// The socket is in Linux's abstract namespace, named after the node's
// advertised data address: no file to clean up, and reachable only from the
// node's own machine (network namespace), which is what "same host" means
// here. A client that cannot connect uses the node's other transports.
//
// Exchange (all integers native-endian: both ends are on one machine):
//   client -> node  ShmRequest
//   node -> client  ShmReply, with the slab's fd attached when code == 0
// The connection then stays open, silent, for as long as the client keeps
// the mapping: when the node process ends, the client sees the hang-up and
// stops using the mapping (a restarted node has other memory).
#ifndef UNIPOOL_TRANSPORT_SHM_SHM_PROTOCOL_H_
#define UNIPOOL_TRANSPORT_SHM_SHM_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace unipool {

constexpr uint32_t kShmMagic = 0x48535055;  // "UPSH"
constexpr uint32_t kShmVersion = 1;

struct ShmRequest {
  uint32_t magic = kShmMagic;
  uint32_t version = kShmVersion;
};

struct ShmReply {
  uint32_t magic = kShmMagic;
  uint32_t version = kShmVersion;
  // absl::StatusCode; 0 = OK and the fd is attached. PermissionDenied when
  // the client runs as another user (the slab would be theirs to change).
  int32_t code = 0;
  uint32_t reserved = 0;
  uint64_t slab_id = 0;     // the slab's identity (unipool/common/slab.h)
  uint64_t map_offset = 0;  // where slab byte 0 is in the fd (page aligned)
  uint64_t slab_size = 0;   // bytes from map_offset
  char message[192] = {};   // why not, NUL-terminated, when code != 0
};
static_assert(sizeof(ShmReply) == 232, "ShmReply is a fixed-size wire struct");

// The abstract socket name of the node advertised at `data_address`, without
// the leading NUL byte that places it in the abstract namespace.
inline std::string ShmSocketName(std::string_view data_address) {
  return "unipool-shm/" + std::string(data_address);
}

}  // namespace unipool

#endif  // UNIPOOL_TRANSPORT_SHM_SHM_PROTOCOL_H_
