// Which directory requests a peer may make, by what it proved in its Hello
// (common/include/unipool/common/auth.h). Holders of the cluster key, and
// every peer of a directory that has no key, may do everything; token
// holders are limited by role:
//   node:   RegisterNode and Heartbeat only (and only nodes may send those);
//   client: object requests on keys under the token's prefix, List within
//           it, tensor and model requests on names under it (and so on
//           their stripes, whose keys carry the owner's name), status and
//           metrics;
//   admin:  everything but node registration, on any key (drain, undrain,
//           evict, pin by prefix, list anywhere); step-down and drains
//           only without a prefix.
#ifndef UNIPOOL_DIRECTORY_AUTHORIZE_H_
#define UNIPOOL_DIRECTORY_AUTHORIZE_H_

#include "absl/status/status.h"
#include "unipool/common/auth.h"

namespace unipool {

// OK, or PermissionDenied naming the request and what the peer lacks.
absl::Status AuthorizeDirectoryRequest(const Principal& who, const wire::Message& request);

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_AUTHORIZE_H_
