// Queue-pair setup: creation with its completion queues, and the state
// changes RESET -> INIT -> RTR (ready to receive) -> RTS (ready to send),
// each setting exactly the attributes its mask names. The data path is in
// queue_pair.cc.
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "unipool/common/status_macros.h"
#include "unipool/verbs/rdma.h"

namespace unipool {
namespace {

// RC timeouts: 4.096 us * 2^14 = 67 ms per try, 7 tries; RNR retries forever
// would hide a dead peer, 7 is the verbs maximum short of that.
constexpr uint8_t kRcTimeout = 14;
constexpr uint8_t kRcRetries = 7;
constexpr uint8_t kRnrRetries = 7;
constexpr uint8_t kMinRnrTimer = 12;
constexpr uint8_t kHopLimit = 64;
// Work requests carry one piece of memory each.
constexpr int kSgesPerRequest = 1;
// PSNs are 24 bits.
constexpr uint32_t kPsnMask = 0xffffff;

// What each state change sets, for both QP types, and what RC adds.
constexpr int kToInitMask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
constexpr int kToRtrMask =
    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
constexpr int kToRtrRcMask = IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
constexpr int kToRtsMask = IBV_QP_STATE | IBV_QP_SQ_PSN;
constexpr int kToRtsRcMask =
    IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;

}  // namespace

absl::StatusOr<std::unique_ptr<QueuePair>> QueuePair::Create(const RdmaDevice& device,
                                                             RdmaMode mode) {
  const VerbsApi& api = device.api();
  std::unique_ptr<QueuePair> qp(new QueuePair(device, mode));
  qp->depth_ = mode == RdmaMode::kUC ? kUcQueueDepth : kRcQueueDepth;
  qp->cq_ = CompletionQueueHandle(api.create_cq(device.context(), qp->depth_, nullptr, nullptr, 0),
                                  {&api});
  if (qp->cq_ == nullptr) return qp->Error("ibv_create_cq (send)", errno);
  qp->recv_cq_ = CompletionQueueHandle(
      api.create_cq(device.context(), qp->depth_, nullptr, nullptr, 0), {&api});
  if (qp->recv_cq_ == nullptr) return qp->Error("ibv_create_cq (receive)", errno);
  ibv_qp_init_attr init{};
  init.send_cq = qp->cq_.get();
  init.recv_cq = qp->recv_cq_.get();
  init.qp_type = mode == RdmaMode::kRC ? IBV_QPT_RC : IBV_QPT_UC;
  init.cap.max_send_wr = qp->depth_;
  init.cap.max_recv_wr = qp->depth_;
  init.cap.max_send_sge = kSgesPerRequest;
  init.cap.max_recv_sge = kSgesPerRequest;
  init.sq_sig_all = 0;  // each request says whether it is signalled
  qp->qp_ = QueuePairHandle(api.create_qp(device.pd(), &init), {&api});
  if (qp->qp_ == nullptr) return qp->Error("ibv_create_qp", errno);
  RETURN_IF_ERROR(qp->ToInit());
  static thread_local std::mt19937 rng(std::random_device{}());
  qp->local_.qp_num = qp->qp_->qp_num;
  qp->local_.psn = rng() & kPsnMask;
  qp->local_.lid = device.lid();
  qp->local_.gid = device.gid();
  qp->local_.mtu = device.active_mtu();
  qp->max_message_ = device.max_message();
  return qp;
}

absl::Status QueuePair::ToInit() {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_INIT;
  attr.pkey_index = 0;
  attr.port_num = device_.port();
  attr.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
  if (mode_ == RdmaMode::kRC) attr.qp_access_flags |= IBV_ACCESS_REMOTE_READ;
  if (int rc = device_.api().modify_qp(qp_.get(), &attr, kToInitMask); rc != 0) {
    return Error("modify to INIT", rc);
  }
  return absl::OkStatus();
}

absl::Status QueuePair::ToReadyToReceive(const QpEndpoint& remote) {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTR;
  attr.path_mtu = NegotiateMtu(local_.mtu, remote.mtu);
  attr.dest_qp_num = remote.qp_num;
  attr.rq_psn = remote.psn;
  attr.ah_attr.dlid = remote.lid;
  attr.ah_attr.sl = 0;
  attr.ah_attr.src_path_bits = 0;
  attr.ah_attr.port_num = device_.port();
  if (!IsZeroGid(remote.gid)) {
    attr.ah_attr.is_global = 1;
    std::memcpy(attr.ah_attr.grh.dgid.raw, remote.gid.data(), 16);
    attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(device_.gid_index());
    attr.ah_attr.grh.hop_limit = kHopLimit;
  }
  int mask = kToRtrMask;
  if (mode_ == RdmaMode::kRC) {
    attr.max_dest_rd_atomic = static_cast<uint8_t>(device_.max_rd_atomic());
    attr.min_rnr_timer = kMinRnrTimer;
    mask |= kToRtrRcMask;
  }
  if (int rc = device_.api().modify_qp(qp_.get(), &attr, mask); rc != 0) {
    return Error(absl::StrFormat("modify to RTR (remote QP %u, GID %s, MTU %d)", remote.qp_num,
                                 FormatGid(remote.gid), MtuBytes(attr.path_mtu)),
                 rc);
  }
  return absl::OkStatus();
}

absl::Status QueuePair::ToReadyToSend() {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTS;
  attr.sq_psn = local_.psn;
  int mask = kToRtsMask;
  if (mode_ == RdmaMode::kRC) {
    attr.timeout = kRcTimeout;
    attr.retry_cnt = kRcRetries;
    attr.rnr_retry = kRnrRetries;
    attr.max_rd_atomic = static_cast<uint8_t>(device_.max_rd_atomic());
    mask |= kToRtsRcMask;
  }
  if (int rc = device_.api().modify_qp(qp_.get(), &attr, mask); rc != 0) {
    return Error("modify to RTS", rc);
  }
  return absl::OkStatus();
}

absl::Status QueuePair::Error(const std::string& what, int err) const {
  return absl::UnavailableError(absl::StrFormat("%s QP %u: %s: %s", device_.name(),
                                                qp_ != nullptr ? qp_->qp_num : 0, what,
                                                std::strerror(err)));
}

}  // namespace unipool
