// Owners of single verbs objects: one std::unique_ptr type per kind of
// object, whose deleter releases it through the loaded verbs library
// (VerbsApi) and logs a release that fails (the object was still in use, e.g.
// a completion queue with a queue pair attached, and is leaked).
//
// Declare the handles of a class in creation order: members are destroyed in
// reverse, which is the order verbs needs (QP before its CQs; MRs and the PD
// before the context).
//
// Thread safety: a handle is as thread-safe as the object it owns.
#ifndef UNIPOOL_VERBS_VERBS_HANDLES_H_
#define UNIPOOL_VERBS_VERBS_HANDLES_H_

#include <infiniband/verbs.h>

#include <memory>

#include "unipool/verbs/verbs_library.h"

namespace unipool {

struct DeviceListDeleter {
  const VerbsApi* api = nullptr;
  void operator()(ibv_device** list) const;
};
struct ContextDeleter {
  const VerbsApi* api = nullptr;
  void operator()(ibv_context* context) const;
};
struct ProtectionDomainDeleter {
  const VerbsApi* api = nullptr;
  void operator()(ibv_pd* pd) const;
};
struct CompletionQueueDeleter {
  const VerbsApi* api = nullptr;
  void operator()(ibv_cq* cq) const;
};
struct QueuePairDeleter {
  const VerbsApi* api = nullptr;
  void operator()(ibv_qp* qp) const;
};
struct MemoryRegionDeleter {
  const VerbsApi* api = nullptr;
  void operator()(ibv_mr* mr) const;
};

using DeviceListHandle = std::unique_ptr<ibv_device*, DeviceListDeleter>;
using ContextHandle = std::unique_ptr<ibv_context, ContextDeleter>;
using ProtectionDomainHandle = std::unique_ptr<ibv_pd, ProtectionDomainDeleter>;
using CompletionQueueHandle = std::unique_ptr<ibv_cq, CompletionQueueDeleter>;
using QueuePairHandle = std::unique_ptr<ibv_qp, QueuePairDeleter>;
using MemoryRegionHandle = std::unique_ptr<ibv_mr, MemoryRegionDeleter>;

}  // namespace unipool

#endif  // UNIPOOL_VERBS_VERBS_HANDLES_H_
