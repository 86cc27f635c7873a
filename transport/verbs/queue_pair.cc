// The queue pair's data path: RDMA READ/WRITE of transfers cut into pieces,
// posted in chains that fill the send queue, and completions polled until
// every piece is done; receives for incoming immediates. Setup is in
// queue_pair_setup.cc.
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/verbs/rdma.h"

namespace unipool {
namespace {

// Completions taken per ibv_poll_cq call.
constexpr int kCompletionsPerPoll = 16;
static_assert(kCompletionsPerPoll <= kUcQueueDepth, "one poll never asks for more than fits");
// Empty completion polls between checks of the peer's socket.
constexpr uint64_t kPollsPerPeerCheck = 1024;
// Every request is signalled: a completion per piece keeps the window
// accounting exact, and pieces are large (up to the port's message size).
constexpr unsigned kSendFlags = IBV_SEND_SIGNALED;

}  // namespace

struct QueuePair::Work {
  const RdmaTransfer* transfer;
  Piece piece;
};

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

absl::Status QueuePair::PostChain(ibv_wr_opcode opcode, const std::vector<Work>& work, size_t& next,
                                  int room, const uint32_t* imm) {
  size_t batch = std::min(static_cast<size_t>(room), work.size() - next);
  if (batch == 0) return absl::OkStatus();
  std::vector<ibv_send_wr> wrs(batch);
  std::vector<ibv_sge> sges(batch);
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
    wr.send_flags = kSendFlags;
    wr.wr.rdma.remote_addr = w.transfer->remote_addr + w.piece.offset;
    wr.wr.rdma.rkey = w.transfer->rkey;
    if (imm != nullptr && next == work.size() - 1) {
      wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
      wr.imm_data = htonl(*imm);
    }
    wr.next = i + 1 < batch ? &wrs[i + 1] : nullptr;
  }
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_.get(), wrs.data(), &bad); rc != 0) {
    broken_ = true;
    return Error("ibv_post_send", rc);
  }
  return absl::OkStatus();
}

// Posts every piece, up to depth() in flight, and polls until all complete.
// Any failure leaves the QP broken (completions may still arrive for
// buffers the caller gets back).
absl::Status QueuePair::Run(ibv_wr_opcode opcode, std::span<const RdmaTransfer> transfers,
                            absl::Duration timeout, const uint32_t* imm) {
  if (broken_) return absl::UnavailableError("queue pair is in error state");
  std::vector<Work> work;
  for (const RdmaTransfer& t : transfers) {
    for (const Piece& p : SplitTransfer(t.length, max_message_)) work.push_back({&t, p});
  }
  absl::Time deadline = absl::Now() + timeout;
  uint64_t idle_polls = 0;
  size_t next = 0, completed = 0;
  int in_flight = 0;
  ibv_wc wc[kCompletionsPerPoll];
  while (completed < work.size()) {
    size_t posted_before = next;
    if (absl::Status s = PostChain(opcode, work, next, depth_ - in_flight, imm); !s.ok()) return s;
    in_flight += static_cast<int>(next - posted_before);
    int n = ibv_poll_cq(cq_.get(), kCompletionsPerPoll, wc);
    if (n < 0) {
      broken_ = true;
      return Error("ibv_poll_cq", EIO);
    }
    for (int i = 0; i < n; ++i) {
      if (wc[i].status != IBV_WC_SUCCESS) {
        broken_ = true;
        return absl::UnavailableError(absl::StrFormat(
            "%s QP %u: work request %u failed: %s (vendor error 0x%x)", device_.name(), qp_num(),
            wc[i].wr_id, device_.api().wc_status_str(wc[i].status), wc[i].vendor_err));
      }
    }
    in_flight -= n;
    completed += n;
    if (n > 0) continue;
    if (++idle_polls % kPollsPerPeerCheck == 0) {
      if (PeerGone()) {
        broken_ = true;
        return absl::UnavailableError(absl::StrFormat(
            "%s QP %u: the peer closed its connection with %u of %u work requests incomplete",
            device_.name(), qp_num(), work.size() - completed, work.size()));
      }
      // A pulled cable: some devices never complete what was posted on it.
      if (!device_.PortActive()) {
        broken_ = true;
        return absl::UnavailableError(
            absl::StrFormat("%s port %u went down with %u of %u work requests incomplete",
                            device_.name(), device_.port(), work.size() - completed, work.size()));
      }
    }
    if (absl::Now() > deadline) {
      broken_ = true;
      return absl::DeadlineExceededError(absl::StrFormat(
          "%s QP %u: %u of %u work requests incomplete after %s", device_.name(), qp_num(),
          work.size() - completed, work.size(), absl::FormatDuration(timeout)));
    }
    sched_yield();  // 2-core machines: let the peer run
  }
  return absl::OkStatus();
}

absl::Status QueuePair::SendImmediate(uint32_t imm, absl::Duration timeout) {
  if (broken_) return absl::UnavailableError("queue pair is in error state");
  ibv_send_wr wr{};
  wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;  // zero bytes: no memory is touched
  wr.send_flags = kSendFlags;
  wr.imm_data = htonl(imm);
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_.get(), &wr, &bad); rc != 0) {
    broken_ = true;
    return Error("ibv_post_send", rc);
  }
  absl::Time deadline = absl::Now() + timeout;
  ibv_wc wc;
  for (;;) {
    int n = ibv_poll_cq(cq_.get(), 1, &wc);
    if (n < 0 || (n == 1 && wc.status != IBV_WC_SUCCESS)) {
      broken_ = true;
      return absl::UnavailableError(
          absl::StrFormat("%s QP %u: immediate failed: %s", device_.name(), qp_num(),
                          n < 0 ? "poll error" : device_.api().wc_status_str(wc.status)));
    }
    if (n == 1) return absl::OkStatus();
    if (absl::Now() > deadline) {
      broken_ = true;
      return absl::DeadlineExceededError(absl::StrFormat("%s QP %u: immediate not sent within %s",
                                                         device_.name(), qp_num(),
                                                         absl::FormatDuration(timeout)));
    }
    sched_yield();
  }
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
    wr.sg_list = nullptr;  // immediates carry no data here
    wr.num_sge = 0;
    ibv_recv_wr* bad = nullptr;
    if (int rc = ibv_post_recv(qp_.get(), &wr, &bad); rc != 0) return Error("ibv_post_recv", rc);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> QueuePair::WaitImmediate(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  uint64_t idle_polls = 0;
  ibv_wc wc;
  for (;;) {
    int n = ibv_poll_cq(recv_cq_.get(), 1, &wc);
    if (n < 0) return Error("ibv_poll_cq", EIO);
    if (n == 1) {
      if (wc.status != IBV_WC_SUCCESS) {
        broken_ = true;
        return absl::UnavailableError(absl::StrFormat("%s QP %u: receive failed: %s",
                                                      device_.name(), qp_num(),
                                                      device_.api().wc_status_str(wc.status)));
      }
      if (absl::Status s = PostReceives(1); !s.ok()) return s;  // keep the queue full
      return ntohl(wc.imm_data);
    }
    // A pulled cable: the immediate will not come, so do not wait out the
    // timeout (a UC get's whole stall) when the port says so at once.
    if (++idle_polls % kPollsPerPeerCheck == 0 && !device_.PortActive()) {
      broken_ = true;
      return absl::UnavailableError(absl::StrFormat(
          "%s port %u went down while waiting for an immediate", device_.name(), device_.port()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("%s QP %u: no immediate within %s",
                                                         device_.name(), qp_num(),
                                                         absl::FormatDuration(timeout)));
    }
    sched_yield();
  }
}

}  // namespace unipool
