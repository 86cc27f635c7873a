// The verbs API, reached at run time through dlopen, so the same binaries
// start on machines without any RDMA library or device and fall back to TCP.
// Linux: libibverbs.so.1 (rdma-core). macOS 26.2+: librdma.dylib (Apple's
// Thunderbolt RDMA, loaded the same way by MLX).
//
// Only the exported entry points are looked up; ibv_post_send, ibv_post_recv
// and ibv_poll_cq are inline in <infiniband/verbs.h> and call through the
// device context's function table, so they need no symbol.
//
// Thread safety: LoadVerbs is thread-safe; the table is immutable after.
#ifndef UNIPOOL_VERBS_VERBS_LIBRARY_H_
#define UNIPOOL_VERBS_VERBS_LIBRARY_H_

#include <infiniband/verbs.h>

#include "absl/status/statusor.h"

namespace unipool {

struct VerbsApi {
  decltype(&::ibv_get_device_list) get_device_list;
  decltype(&::ibv_free_device_list) free_device_list;
  decltype(&::ibv_get_device_name) get_device_name;
  decltype(&::ibv_open_device) open_device;
  decltype(&::ibv_close_device) close_device;
  decltype(&::ibv_query_device) query_device;
  // The exported symbol takes the compat (prefix) layout of ibv_port_attr.
  int (*query_port)(ibv_context*, uint8_t, ibv_port_attr*);
  decltype(&::ibv_query_gid) query_gid;
  decltype(&::ibv_alloc_pd) alloc_pd;
  decltype(&::ibv_dealloc_pd) dealloc_pd;
  struct ibv_mr* (*reg_mr)(ibv_pd*, void*, size_t, int);
  decltype(&::ibv_dereg_mr) dereg_mr;
  decltype(&::ibv_create_cq) create_cq;
  decltype(&::ibv_destroy_cq) destroy_cq;
  decltype(&::ibv_create_qp) create_qp;
  decltype(&::ibv_modify_qp) modify_qp;
  decltype(&::ibv_destroy_qp) destroy_qp;
  decltype(&::ibv_wc_status_str) wc_status_str;
  // Optional (null when the library lacks them): port and device events.
  decltype(&::ibv_get_async_event) get_async_event;
  decltype(&::ibv_ack_async_event) ack_async_event;
  decltype(&::ibv_event_type_str) event_type_str;
};

// Loads the library once. FailedPrecondition naming the library or symbol
// when it is missing. $UNIPOOL_VERBS_LIBRARY overrides the library path.
absl::StatusOr<const VerbsApi*> LoadVerbs();

}  // namespace unipool

#endif  // UNIPOOL_VERBS_VERBS_LIBRARY_H_
