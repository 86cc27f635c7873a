#include "unipool/client/node_io_seam.h"

#include "client_impl.h"
#include "unipool/common/status_macros.h"

namespace unipool {

absl::StatusOr<std::unique_ptr<Client>> ClientSeam::Connect(const ClientOptions& options,
                                                            NodeIo* node_io, std::string host) {
  auto impl = std::make_unique<Client::Impl>(options, ClientSecurity{}, std::move(host));
  impl->UseNodeIo(node_io);
  RETURN_IF_ERROR(impl->FetchPoolState().status());  // the directory answers
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

}  // namespace unipool
