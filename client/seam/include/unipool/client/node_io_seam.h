// A seam for unit tests of the SDK's placement, fallback and retry logic
// without node processes: a Client whose page bytes go through a NodeIo the
// test provides (an in-process fake that serves, fails, corrupts or delays
// reads and writes on demand) instead of the shm/RDMA/TCP transports that
// ClientOptions would choose. Directory requests still go to
// options.directory (a DirectoryService in the test's own process will do).
// Not installed with the SDK; link unipool_client_seam.
//
// Thread safety: as Client; the NodeIo is called from the client's threads
// concurrently (a batch's node requests run side by side).
#ifndef UNIPOOL_CLIENT_NODE_IO_SEAM_H_
#define UNIPOOL_CLIENT_NODE_IO_SEAM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "unipool/client.h"
#include "unipool/transport/node_io.h"

namespace unipool {

class ClientSeam {
 public:
  // Connects like Client::Connect, then moves every node's bytes through
  // `node_io`. `host` is the machine the client believes it runs on: copies
  // whose node registered that host are read first (empty: the real host
  // name). REQUIRES: `node_io` outlives the client.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options,
                                                         NodeIo* node_io, std::string host = "");
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_NODE_IO_SEAM_H_
