#include "unipool/verbs/rdma.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/common/log.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// RC timeouts: 4.096 us * 2^14 = 67 ms per try, 7 tries; RNR retries forever
// would hide a dead peer, 7 is the verbs maximum short of that.
constexpr uint8_t kRcTimeout = 14;
constexpr uint8_t kRcRetries = 7;
constexpr uint8_t kRnrRetries = 7;
constexpr uint8_t kMinRnrTimer = 12;
constexpr uint8_t kHopLimit = 64;
// Empty completion polls between checks of the peer's socket.
constexpr uint64_t kPollsPerPeerCheck = 1024;

std::string Errno(int err) { return std::strerror(err); }

}  // namespace

const char* RdmaModeName(RdmaMode mode) { return mode == RdmaMode::kRC ? "rdma-rc" : "rdma-uc"; }

absl::StatusOr<std::unique_ptr<RdmaDevice>> RdmaDevice::Open(const std::string& name,
                                                             int gid_index) {
  ASSIGN_OR_RETURN(const VerbsApi* api, LoadVerbs());
  int count = 0;
  ibv_device** list = api->get_device_list(&count);
  if (list == nullptr || count == 0) {
    if (list != nullptr) api->free_device_list(list);
    return absl::FailedPreconditionError("no RDMA device on this machine");
  }
  std::unique_ptr<RdmaDevice> device(new RdmaDevice());
  device->api_ = api;
  std::string tried;
  for (int i = 0; i < count && device->context_ == nullptr; ++i) {
    std::string dev_name = api->get_device_name(list[i]);
    if (!name.empty() && dev_name != name) continue;
    ibv_context* ctx = api->open_device(list[i]);
    if (ctx == nullptr) {
      tried += absl::StrFormat(" %s(open: %s)", dev_name, Errno(errno));
      continue;
    }
    ibv_device_attr dev_attr{};
    if (api->query_device(ctx, &dev_attr) != 0) {
      api->close_device(ctx);
      continue;
    }
    for (uint8_t port = 1; port <= dev_attr.phys_port_cnt; ++port) {
      ibv_port_attr port_attr{};
      if (api->query_port(ctx, port, &port_attr) != 0 || port_attr.state != IBV_PORT_ACTIVE) {
        continue;
      }
      std::vector<Gid> table;
      for (int g = 0; g < port_attr.gid_tbl_len && g < 256; ++g) {
        ibv_gid gid{};
        if (api->query_gid(ctx, port, g, &gid) != 0) break;
        Gid entry;
        std::memcpy(entry.data(), gid.raw, 16);
        table.push_back(entry);
      }
      int chosen = gid_index >= 0 ? gid_index : ChooseGidIndex(table);
      // InfiniBand routes by LID and needs no GID; RoCE needs one.
      if ((chosen < 0 || chosen >= static_cast<int>(table.size())) && port_attr.lid == 0) {
        tried += absl::StrFormat(" %s:%u(no usable GID)", dev_name, port);
        continue;
      }
      device->context_ = ctx;
      device->name_ = dev_name;
      device->port_ = port;
      device->gid_index_ = std::max(chosen, 0);
      if (chosen >= 0 && chosen < static_cast<int>(table.size())) device->gid_ = table[chosen];
      device->lid_ = port_attr.lid;
      device->active_mtu_ = port_attr.active_mtu;
      device->max_message_ = port_attr.max_msg_sz > 0 ? port_attr.max_msg_sz : (1u << 30);
      device->max_rd_atomic_ = std::max(1, std::min(16, dev_attr.max_qp_rd_atom));
      break;
    }
    if (device->context_ == nullptr) {
      tried += absl::StrFormat(" %s(no active port)", dev_name);
      api->close_device(ctx);
    }
  }
  api->free_device_list(list);
  if (device->context_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("no usable RDMA device%s:%s", name.empty() ? "" : " named " + name, tried));
  }
  device->pd_ = api->alloc_pd(device->context_);
  if (device->pd_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: ibv_alloc_pd: %s", device->name_, Errno(errno)));
  }
  // RC is what Linux NICs and Soft-RoCE offer; Apple's fabric has only UC.
  auto probe = QueuePair::Create(*device, RdmaMode::kRC);
  device->supports_rc_ = probe.ok();
  return device;
}

bool RdmaDevice::PortActive() const {
  ibv_port_attr attr{};
  return api_->query_port(context_, port_, &attr) == 0 && attr.state == IBV_PORT_ACTIVE;
}

RdmaDevice::~RdmaDevice() {
  if (pd_ != nullptr && api_->dealloc_pd(pd_) != 0) {
    LogWarning("%s: ibv_dealloc_pd failed: %s", name_, Errno(errno));
  }
  if (context_ != nullptr) api_->close_device(context_);
}

absl::StatusOr<std::unique_ptr<MemoryRegion>> RdmaDevice::Register(void* addr, size_t length,
                                                                   bool remote) const {
  int access = IBV_ACCESS_LOCAL_WRITE;
  if (remote) access |= IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
  ibv_mr* mr = api_->reg_mr(pd_, addr, length, access);
  if (mr == nullptr) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: ibv_reg_mr of %u bytes failed: %s (raise `ulimit -l`?)", name_, length, Errno(errno)));
  }
  return std::unique_ptr<MemoryRegion>(new MemoryRegion(api_, mr));
}

MemoryRegion::~MemoryRegion() {
  if (api_->dereg_mr(mr_) != 0) LogWarning("ibv_dereg_mr failed: %s", Errno(errno));
}

absl::StatusOr<std::unique_ptr<QueuePair>> QueuePair::Create(const RdmaDevice& device,
                                                             RdmaMode mode) {
  const VerbsApi& api = device.api();
  std::unique_ptr<QueuePair> qp(new QueuePair(device, mode));
  qp->depth_ = mode == RdmaMode::kUC ? kUcQueueDepth : kRcQueueDepth;
  qp->cq_ = api.create_cq(device.context(), qp->depth_, nullptr, nullptr, 0);
  qp->recv_cq_ = api.create_cq(device.context(), qp->depth_, nullptr, nullptr, 0);
  if (qp->cq_ == nullptr || qp->recv_cq_ == nullptr) {
    return qp->Error("ibv_create_cq", errno);
  }
  ibv_qp_init_attr init{};
  init.send_cq = qp->cq_;
  init.recv_cq = qp->recv_cq_;
  init.qp_type = mode == RdmaMode::kRC ? IBV_QPT_RC : IBV_QPT_UC;
  init.cap.max_send_wr = qp->depth_;
  init.cap.max_recv_wr = qp->depth_;
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  init.sq_sig_all = 0;
  qp->qp_ = api.create_qp(device.pd(), &init);
  if (qp->qp_ == nullptr) return qp->Error("ibv_create_qp", errno);

  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_INIT;
  attr.pkey_index = 0;
  attr.port_num = device.port();
  attr.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
  if (mode == RdmaMode::kRC) attr.qp_access_flags |= IBV_ACCESS_REMOTE_READ;
  constexpr int kInitMask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
  if (int rc = api.modify_qp(qp->qp_, &attr, kInitMask); rc != 0) {
    return qp->Error("modify to INIT", rc);
  }
  static thread_local std::mt19937 rng(std::random_device{}());
  qp->local_.qp_num = qp->qp_->qp_num;
  qp->local_.psn = rng() & 0xffffff;
  qp->local_.lid = device.lid();
  qp->local_.gid = device.gid();
  qp->local_.mtu = device.active_mtu();
  qp->max_message_ = device.max_message();
  return qp;
}

QueuePair::~QueuePair() {
  const VerbsApi& api = device_.api();
  if (qp_ != nullptr && api.destroy_qp(qp_) != 0) {
    LogWarning("%s: ibv_destroy_qp %u failed: %s", device_.name(), qp_->qp_num, Errno(errno));
  }
  if (recv_cq_ != nullptr) api.destroy_cq(recv_cq_);
  if (cq_ != nullptr) api.destroy_cq(cq_);
}

absl::Status QueuePair::Error(const std::string& what, int err) const {
  return absl::UnavailableError(absl::StrFormat(
      "%s QP %u: %s: %s", device_.name(), qp_ != nullptr ? qp_->qp_num : 0, what, Errno(err)));
}

absl::Status QueuePair::Connect(const QpEndpoint& remote) {
  const VerbsApi& api = device_.api();
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
  int rtr_mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
  if (mode_ == RdmaMode::kRC) {
    attr.max_dest_rd_atomic = static_cast<uint8_t>(device_.max_rd_atomic());
    attr.min_rnr_timer = kMinRnrTimer;
    rtr_mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
  }
  if (int rc = api.modify_qp(qp_, &attr, rtr_mask); rc != 0) {
    return Error(absl::StrFormat("modify to RTR (remote QP %u, GID %s, MTU %d)", remote.qp_num,
                                 FormatGid(remote.gid), MtuBytes(attr.path_mtu)),
                 rc);
  }
  attr = {};
  attr.qp_state = IBV_QPS_RTS;
  attr.sq_psn = local_.psn;
  int rts_mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
  if (mode_ == RdmaMode::kRC) {
    attr.timeout = kRcTimeout;
    attr.retry_cnt = kRcRetries;
    attr.rnr_retry = kRnrRetries;
    attr.max_rd_atomic = static_cast<uint8_t>(device_.max_rd_atomic());
    rts_mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
  }
  if (int rc = api.modify_qp(qp_, &attr, rts_mask); rc != 0) return Error("modify to RTS", rc);
  return absl::OkStatus();
}

absl::Status QueuePair::Read(std::span<const RdmaTransfer> transfers, absl::Duration timeout) {
  if (mode_ != RdmaMode::kRC) {
    return absl::FailedPreconditionError("RDMA READ needs an RC queue pair (UC has none)");
  }
  return Run(IBV_WR_RDMA_READ, transfers, timeout, nullptr);
}

absl::Status QueuePair::Write(std::span<const RdmaTransfer> transfers, absl::Duration timeout,
                              const uint32_t* imm) {
  return Run(IBV_WR_RDMA_WRITE, transfers, timeout, imm);
}

absl::Status QueuePair::Run(ibv_wr_opcode opcode, std::span<const RdmaTransfer> transfers,
                            absl::Duration timeout, const uint32_t* imm) {
  if (broken_) return absl::UnavailableError("queue pair is in error state");
  // Every piece of every transfer, in order.
  struct Work {
    const RdmaTransfer* transfer;
    Piece piece;
  };
  std::vector<Work> work;
  for (const RdmaTransfer& t : transfers) {
    for (const Piece& p : SplitTransfer(t.length, max_message_)) work.push_back({&t, p});
  }
  if (work.empty()) return absl::OkStatus();

  absl::Time deadline = absl::Now() + timeout;
  uint64_t idle_polls = 0;
  size_t next = 0, completed = 0;
  int in_flight = 0;
  ibv_wc wc[16];
  while (completed < work.size()) {
    // Post a chain of as many work requests as the queue has room for.
    std::vector<ibv_send_wr> wrs;
    std::vector<ibv_sge> sges;
    size_t room = static_cast<size_t>(depth_ - in_flight);
    size_t batch = std::min(room, work.size() - next);
    wrs.resize(batch);
    sges.resize(batch);
    for (size_t i = 0; i < batch; ++i, ++next) {
      const Work& w = work[next];
      sges[i].addr = reinterpret_cast<uint64_t>(w.transfer->local + w.piece.offset);
      sges[i].length = static_cast<uint32_t>(w.piece.length);
      sges[i].lkey = w.transfer->lkey;
      ibv_send_wr& wr = wrs[i];
      wr = {};
      wr.wr_id = next;
      wr.sg_list = &sges[i];
      wr.num_sge = 1;
      wr.opcode = opcode;
      // Every request signalled: a completion per piece keeps the window
      // accounting exact, and pieces are large (up to the port's message size).
      wr.send_flags = IBV_SEND_SIGNALED;
      wr.wr.rdma.remote_addr = w.transfer->remote_addr + w.piece.offset;
      wr.wr.rdma.rkey = w.transfer->rkey;
      if (imm != nullptr && next == work.size() - 1) {
        wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
        wr.imm_data = htonl(*imm);
      }
      wr.next = i + 1 < batch ? &wrs[i + 1] : nullptr;
    }
    if (batch > 0) {
      ibv_send_wr* bad = nullptr;
      if (int rc = ibv_post_send(qp_, wrs.data(), &bad); rc != 0) {
        broken_ = true;
        return Error("ibv_post_send", rc);
      }
      in_flight += static_cast<int>(batch);
    }
    int n = ibv_poll_cq(cq_, 16, wc);
    if (n < 0) {
      broken_ = true;
      return Error("ibv_poll_cq", EIO);
    }
    for (int i = 0; i < n; ++i) {
      if (wc[i].status != IBV_WC_SUCCESS) {
        broken_ = true;
        return absl::UnavailableError(absl::StrFormat(
            "%s QP %u: work request %u failed: %s (vendor error 0x%x)", device_.name(), qp_->qp_num,
            wc[i].wr_id, device_.api().wc_status_str(wc[i].status), wc[i].vendor_err));
      }
    }
    in_flight -= n;
    completed += n;
    if (n == 0) {
      if (++idle_polls % kPollsPerPeerCheck == 0 && PeerGone()) {
        broken_ = true;
        return absl::UnavailableError(absl::StrFormat(
            "%s QP %u: the peer closed its connection with %u of %u work requests incomplete",
            device_.name(), qp_->qp_num, work.size() - completed, work.size()));
      }
      if (absl::Now() > deadline) {
        broken_ = true;  // completions may still arrive for buffers we give back
        return absl::DeadlineExceededError(absl::StrFormat(
            "%s QP %u: %u of %u work requests incomplete after %s", device_.name(), qp_->qp_num,
            work.size() - completed, work.size(), absl::FormatDuration(timeout)));
      }
      sched_yield();  // 2-core machines: let the peer run
    }
  }
  return absl::OkStatus();
}

bool QueuePair::PeerGone() const {
  if (peer_fd_ < 0) return false;
  pollfd pfd{peer_fd_, POLLRDHUP, 0};
  return ::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

absl::Status QueuePair::PostReceives(int count) {
  for (int i = 0; i < count; ++i) {
    ibv_recv_wr wr{};
    wr.wr_id = i;
    wr.sg_list = nullptr;
    wr.num_sge = 0;
    ibv_recv_wr* bad = nullptr;
    if (int rc = ibv_post_recv(qp_, &wr, &bad); rc != 0) return Error("ibv_post_recv", rc);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> QueuePair::WaitImmediate(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  ibv_wc wc;
  for (;;) {
    int n = ibv_poll_cq(recv_cq_, 1, &wc);
    if (n < 0) return Error("ibv_poll_cq", EIO);
    if (n == 1) {
      if (wc.status != IBV_WC_SUCCESS) {
        broken_ = true;
        return absl::UnavailableError(absl::StrFormat("%s QP %u: receive failed: %s",
                                                      device_.name(), qp_->qp_num,
                                                      device_.api().wc_status_str(wc.status)));
      }
      if (absl::Status s = PostReceives(1); !s.ok()) return s;  // keep the queue full
      return ntohl(wc.imm_data);
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("%s QP %u: no immediate within %s",
                                                         device_.name(), qp_->qp_num,
                                                         absl::FormatDuration(timeout)));
    }
    sched_yield();
  }
}

}  // namespace unipool
