// The directory's state as the SDK's plain structs (what GetStatus and
// GetMetrics answer), for the dashboard (web/) and its JSON API.
#ifndef UNIPOOL_DIRECTORY_POOL_STATE_H_
#define UNIPOOL_DIRECTORY_POOL_STATE_H_

#include "unipool/client.h"
#include "unipool/directory/directory.h"
#include "unipool/directory/metrics.h"

namespace unipool {

PoolState ToPoolState(const PoolStatus& status);
PoolMetrics ToPoolMetrics(const DirectoryMetrics& metrics, int history_seconds);

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_POOL_STATE_H_
