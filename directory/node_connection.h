// How the directory connects to its nodes for the requests it makes itself
// (moves, verification, flash demotions and promotions): as an admin peer
// named "directory", with the data path's timeouts.
#ifndef UNIPOOL_DIRECTORY_NODE_CONNECTION_H_
#define UNIPOOL_DIRECTORY_NODE_CONNECTION_H_

#include "absl/time/time.h"
#include "unipool/common/connection.h"

namespace unipool {

inline ConnectionOptions NodeConnectionOptions() {
  ConnectionOptions options;
  options.peer_name = "directory";
  options.role = wire::Role::Admin;
  options.connect_timeout = absl::Seconds(3);
  options.io_timeout = absl::Seconds(30);
  return options;
}

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_NODE_CONNECTION_H_
