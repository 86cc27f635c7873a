#include "unipool/verbs/verbs_handles.h"

#include <cstring>
#include <string>

#include "unipool/common/log.h"

namespace unipool {
namespace {

// Verbs release calls return 0 or an errno value (some set errno instead).
void LogFailedRelease(int rc, const char* call, const char* what) {
  if (rc == 0) return;
  int err = rc > 0 ? rc : errno;
  LogWarning("%s of %s failed (%s): it stays allocated", call, what, std::strerror(err));
}

}  // namespace

void DeviceListDeleter::operator()(ibv_device** list) const { api->free_device_list(list); }

void ContextDeleter::operator()(ibv_context* context) const {
  std::string name = context->device != nullptr ? api->get_device_name(context->device) : "?";
  LogFailedRelease(api->close_device(context), "ibv_close_device", ("device " + name).c_str());
}

void ProtectionDomainDeleter::operator()(ibv_pd* pd) const {
  LogFailedRelease(api->dealloc_pd(pd), "ibv_dealloc_pd", "a protection domain");
}

void CompletionQueueDeleter::operator()(ibv_cq* cq) const {
  LogFailedRelease(api->destroy_cq(cq), "ibv_destroy_cq", "a completion queue");
}

void QueuePairDeleter::operator()(ibv_qp* qp) const {
  uint32_t qp_num = qp->qp_num;
  if (int rc = api->destroy_qp(qp); rc != 0) {
    LogWarning("ibv_destroy_qp of QP %u failed (%s): it stays allocated", qp_num,
               std::strerror(rc > 0 ? rc : errno));
  }
}

void MemoryRegionDeleter::operator()(ibv_mr* mr) const {
  size_t length = mr->length;
  if (int rc = api->dereg_mr(mr); rc != 0) {
    LogWarning("ibv_dereg_mr of %u bytes failed (%s): they stay registered", length,
               std::strerror(rc > 0 ? rc : errno));
  }
}

}  // namespace unipool
