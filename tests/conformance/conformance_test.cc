// The data-path conformance suite (data_path_test.cc) on the host's
// transports. RDMA RC and UC run it in the Soft-RoCE VM (tests/rdma_vm).
#include "transports.h"

namespace unipool::testing {

std::vector<TransportSetup> TransportsUnderTest() { return {TcpTransport(), ShmTransport()}; }

}  // namespace unipool::testing
