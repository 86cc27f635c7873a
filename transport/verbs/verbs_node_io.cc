#include "unipool/verbs/verbs_node_io.h"

#include <cstring>
#include <functional>

#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/platform/memory.h"

namespace unipool {

// Members are destroyed in reverse order: the QP first (so no work request
// can still be writing into staging), then the staging MR, then its memory.
struct VerbsNodeIo::Channel {
  std::string address;
  std::unique_ptr<Connection> control;
  platform::AnonymousPages staging;  // mapped, not malloc'd: macOS registers only that
  std::unique_ptr<MemoryRegion> staging_mr;
  std::unique_ptr<QueuePair> qp;
  uint64_t slab_addr = 0;
  uint32_t slab_rkey = 0;

  bool broken() const { return control->broken() || qp->broken(); }
};

namespace {

// An RC transfer whose completions never came, on two queue pairs in turn,
// means the node or the link is gone: for the caller that is Unavailable
// (retry later), as a refused connection would be.
absl::Status NodeUnreachableIfStuck(absl::Status s) {
  if (s.code() != absl::StatusCode::kDeadlineExceeded) return s;
  return absl::UnavailableError(s.message());
}

}  // namespace

// A contiguous piece of user memory, where it lives in the slab, and the
// directory's capability for it (or a range around it; null: none).
struct VerbsNodeIo::Segment {
  uint8_t* user;
  uint64_t length;
  uint64_t slab_offset;
  const Capability* capability = nullptr;
};

// A piece of registered local memory (the user's, or staging) ready for
// RDMA, where it lives in the slab, and its segment's capability (which
// covers every piece of the segment).
struct VerbsNodeIo::LocalPiece {
  uint8_t* local;
  RegionKeys keys;
  uint64_t slab_offset;
  uint64_t length;
  const Capability* capability = nullptr;
};

// The pieces as RDMA transfers to or from the slab.
std::vector<RdmaTransfer> VerbsNodeIo::SlabTransfers(std::span<const LocalPiece> pieces,
                                                     uint64_t slab_addr, uint32_t slab_rkey) {
  std::vector<RdmaTransfer> transfers;
  transfers.reserve(pieces.size());
  for (const LocalPiece& p : pieces) {
    transfers.push_back({p.local, p.keys.lkey, slab_addr + p.slab_offset, slab_rkey, p.length});
  }
  return transfers;
}

absl::StatusOr<std::unique_ptr<VerbsNodeIo>> VerbsNodeIo::Create(
    const VerbsOptions& options, const ConnectionOptions& connection_options, NodeIo* fallback) {
  ASSIGN_OR_RETURN(auto device, RdmaDevice::Open(options.device));
  RdmaMode mode = options.mode;
  if (mode == RdmaMode::kRC && !device->supports_rc()) mode = RdmaMode::kUC;  // Apple's fabric
  return std::unique_ptr<VerbsNodeIo>(
      new VerbsNodeIo(options, connection_options, fallback, std::move(device), mode));
}

VerbsNodeIo::VerbsNodeIo(VerbsOptions options, ConnectionOptions connection_options,
                         NodeIo* fallback, std::unique_ptr<RdmaDevice> device, RdmaMode mode)
    : options_(std::move(options)),
      connection_options_(std::move(connection_options)),
      fallback_(fallback),
      device_(std::move(device)),
      mode_(mode) {}

VerbsNodeIo::~VerbsNodeIo() {
  absl::MutexLock lock(&mu_);
  idle_.clear();  // channels (QPs, MRs) go before the device
  registered_.clear();
}

bool VerbsNodeIo::ServedByFallback(const std::string& address) {
  absl::MutexLock lock(&mu_);
  return tcp_only_.contains(address);
}

absl::StatusOr<std::unique_ptr<VerbsNodeIo::Channel>> VerbsNodeIo::Acquire(
    const std::string& address) {
  {
    absl::MutexLock lock(&mu_);
    auto it = idle_.find(address);
    if (it != idle_.end() && !it->second.empty()) {
      auto channel = std::move(it->second.back());
      it->second.pop_back();
      return channel;
    }
  }
  return Open(address);
}

void VerbsNodeIo::Release(std::unique_ptr<Channel> channel) {
  if (channel == nullptr || channel->broken()) return;
  absl::MutexLock lock(&mu_);
  auto& idle = idle_[channel->address];
  if (idle.size() < 8) idle.push_back(std::move(channel));
}

absl::StatusOr<std::unique_ptr<VerbsNodeIo::Channel>> VerbsNodeIo::Open(
    const std::string& address) {
  auto channel = std::make_unique<Channel>();
  channel->address = address;
  ASSIGN_OR_RETURN(channel->control, Connection::Open(address, connection_options_));
  ASSIGN_OR_RETURN(channel->qp, QueuePair::Create(*device_, mode_));
  if (mode_ == RdmaMode::kUC) RETURN_IF_ERROR(channel->qp->PostReceives(channel->qp->depth()));

  flatbuffers::FlatBufferBuilder fbb;
  auto endpoint = EndpointToWire(fbb, channel->qp->local());
  FinishMessage(
      fbb, wire::CreateRdmaConnect(
               fbb, mode_ == RdmaMode::kRC ? wire::RdmaMode::RC : wire::RdmaMode::UC, endpoint));
  auto reply = channel->control->Call(fbb);
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kFailedPrecondition) {
      absl::MutexLock lock(&mu_);
      tcp_only_.insert(address);  // the node serves no RDMA (or not this mode)
      return std::unique_ptr<Channel>();
    }
    return reply.status();
  }
  const wire::RdmaConnectReply* r = reply->message()->body_as_RdmaConnectReply();
  if (r == nullptr) return absl::InternalError("unexpected reply to RdmaConnect");
  ASSIGN_OR_RETURN(QpEndpoint node, EndpointFromWire(r->node()));
  RETURN_IF_ERROR(channel->qp->Connect(node));
  channel->qp->WatchPeer(channel->control->fd());
  if (r->max_message() > 0) channel->qp->LimitMessageSize(r->max_message());
  channel->slab_addr = r->slab_addr();
  channel->slab_rkey = r->slab_rkey();
  ASSIGN_OR_RETURN(channel->staging, platform::AnonymousPages::Allocate(options_.staging_bytes));
  ASSIGN_OR_RETURN(channel->staging_mr,
                   device_->Register(channel->staging.get(), options_.staging_bytes,
                                     /*remote=*/true));
  return channel;
}

absl::Status VerbsNodeIo::RegisterBuffer(void* data, size_t size) {
  if (data == nullptr || size == 0) return absl::InvalidArgumentError("empty buffer");
  auto start = reinterpret_cast<uintptr_t>(data);
  absl::MutexLock lock(&mu_);
  auto next = registered_.lower_bound(start);
  if (next != registered_.end() && next->first < start + size) {
    return absl::AlreadyExistsError("buffer overlaps one already registered");
  }
  if (next != registered_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second->length() > start) {
      return absl::AlreadyExistsError("buffer overlaps one already registered");
    }
  }
  ASSIGN_OR_RETURN(auto mr, device_->Register(data, size, /*remote=*/true));
  registered_.emplace(start, std::move(mr));
  return absl::OkStatus();
}

absl::Status VerbsNodeIo::UnregisterBuffer(void* data) {
  absl::MutexLock lock(&mu_);
  if (registered_.erase(reinterpret_cast<uintptr_t>(data)) == 0) {
    return absl::NotFoundError("buffer was not registered");
  }
  return absl::OkStatus();
}

std::optional<RegionKeys> VerbsNodeIo::RegisteredKeys(const void* data, size_t size) {
  auto start = reinterpret_cast<uintptr_t>(data);
  absl::MutexLock lock(&mu_);
  auto it = registered_.upper_bound(start);
  if (it == registered_.begin()) return std::nullopt;
  --it;
  if (!it->second->Contains(data, size)) return std::nullopt;
  return RegionKeys{it->second->lkey(), it->second->rkey()};
}

// Moves segments between user memory and the slab in rounds that fit the
// staging buffer. Registered memory is used in place; the rest is copied
// into staging before a write and out of it after a read. `run` performs one
// round.
absl::Status VerbsNodeIo::Staged(
    Channel& ch, std::span<const Segment> segments, bool to_node,
    const std::function<absl::Status(std::span<const LocalPiece>)>& run) {
  const RegionKeys staging_keys{ch.staging_mr->lkey(), ch.staging_mr->rkey()};
  std::vector<LocalPiece> round;
  struct CopyOut {
    uint8_t* user;
    const uint8_t* staged;
    uint64_t length;
  };
  std::vector<CopyOut> copies;
  size_t staged = 0;
  auto flush = [&]() -> absl::Status {
    if (round.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(run(round));
    for (const CopyOut& c : copies) std::memcpy(c.user, c.staged, c.length);
    round.clear();
    copies.clear();
    staged = 0;
    return absl::OkStatus();
  };
  for (const Segment& seg : segments) {
    if (std::optional<RegionKeys> keys = RegisteredKeys(seg.user, seg.length)) {
      round.push_back({seg.user, *keys, seg.slab_offset, seg.length, seg.capability});
      continue;
    }
    for (uint64_t at = 0; at < seg.length;) {
      if (staged == options_.staging_bytes) RETURN_IF_ERROR(flush());
      uint64_t n = std::min<uint64_t>(seg.length - at, options_.staging_bytes - staged);
      uint8_t* stage = ch.staging.get() + staged;
      if (to_node) {
        std::memcpy(stage, seg.user + at, n);
      } else {
        copies.push_back({seg.user + at, stage, n});
      }
      round.push_back({stage, staging_keys, seg.slab_offset + at, n, seg.capability});
      staged += n;
      at += n;
    }
  }
  return flush();
}

absl::Status VerbsNodeIo::WriteOn(Channel& ch, std::span<const WriteOp> ops) {
  std::vector<Segment> segments;
  for (const WriteOp& op : ops) {
    segments.push_back({const_cast<uint8_t*>(op.bytes.data()), op.bytes.size(), op.offset});
  }
  return Staged(ch, segments, /*to_node=*/true, [&](std::span<const LocalPiece> pieces) {
    return ch.qp->Write(SlabTransfers(pieces, ch.slab_addr, ch.slab_rkey),
                        options_.transfer_timeout);
  });
}

absl::Status VerbsNodeIo::VerifyOnNode(Channel& ch, std::span<const WriteOp> ops,
                                       std::vector<bool>* lost) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<wire::Range> ranges;
  std::vector<uint64_t> checksums;
  for (const WriteOp& op : ops) {
    ranges.emplace_back(op.offset, op.bytes.size());
    checksums.push_back(op.checksum);
  }
  auto range_vec = fbb.CreateVectorOfStructs(ranges);
  auto sum_vec = fbb.CreateVector(checksums);
  auto capabilities = OpCapabilities(fbb, ops);
  FinishMessage(fbb, wire::CreateRdmaVerify(fbb, range_vec, sum_vec, capabilities));
  ASSIGN_OR_RETURN(ReceivedFrame reply, ch.control->Call(fbb));
  const wire::StatusList* list = reply.message()->body_as_StatusList();
  if (list == nullptr || list->items() == nullptr || list->items()->size() != ops.size()) {
    return absl::InternalError("unexpected reply to RdmaVerify");
  }
  lost->assign(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::Status s = StatusFromWire(list->items()->Get(i));
    if (s.code() == absl::StatusCode::kDataLoss) {
      (*lost)[i] = true;
    } else if (!s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status VerbsNodeIo::ReadToOnce(Channel& ch, std::span<const ReadOp> ops) {
  // The node writes into memory we registered: the caller's buffer when it
  // is registered, else staging (then copied out).
  std::vector<Segment> segments;
  for (const ReadOp& op : ops) {
    segments.push_back({op.into.data(), op.into.size(), op.offset, op.capability});
  }
  auto run = [&](std::span<const LocalPiece> pieces) -> absl::Status {
    // One request per region written into (staging, or a registered
    // buffer): the node needs that region's rkey.
    size_t first = 0;
    while (first < pieces.size()) {
      size_t last = first;
      while (last < pieces.size() && pieces[last].keys.rkey == pieces[first].keys.rkey) ++last;
      flatbuffers::FlatBufferBuilder fbb;
      std::vector<wire::Range> ranges;
      std::vector<uint64_t> addrs;
      std::vector<const Capability*> capabilities;  // a node with a key checks each piece's
      for (size_t i = first; i < last; ++i) {
        ranges.emplace_back(pieces[i].slab_offset, pieces[i].length);
        addrs.push_back(reinterpret_cast<uint64_t>(pieces[i].local));
        capabilities.push_back(pieces[i].capability);
      }
      uint32_t imm = next_imm_.fetch_add(1);
      auto range_vec = fbb.CreateVectorOfStructs(ranges);
      auto addr_vec = fbb.CreateVector(addrs);
      auto capability_vec = EncodeCapabilities(fbb, capabilities);
      FinishMessage(fbb, wire::CreateRdmaReadTo(fbb, range_vec, addr_vec, pieces[first].keys.rkey,
                                                imm, capability_vec));
      RETURN_IF_ERROR(ch.control->Call(fbb).status());
      // The node has sent everything; wait for the closing immediate,
      // skipping any left over from an earlier, timed-out attempt.
      for (;;) {
        ASSIGN_OR_RETURN(uint32_t got, ch.qp->WaitImmediate(options_.immediate_timeout));
        if (got == imm) break;
      }
      first = last;
    }
    return absl::OkStatus();
  };
  return Staged(ch, segments, /*to_node=*/false, run);
}

absl::Status VerbsNodeIo::ReadOn(Channel& ch, std::span<const ReadOp> ops) {
  if (mode_ == RdmaMode::kRC) {
    std::vector<Segment> segments;
    for (const ReadOp& op : ops) segments.push_back({op.into.data(), op.into.size(), op.offset});
    return Staged(ch, segments, /*to_node=*/false, [&](std::span<const LocalPiece> pieces) {
      return ch.qp->Read(SlabTransfers(pieces, ch.slab_addr, ch.slab_rkey),
                         options_.transfer_timeout);
    });
  }
  // UC: no READ. Ask the node to write, then check what arrived; ask again
  // for what was lost, a bounded number of times.
  std::vector<ReadOp> todo(ops.begin(), ops.end());
  return RetryLostTransfers(options_.uc_max_attempts, [&](int attempt) -> absl::Status {
    if (attempt > 1) retries_.fetch_add(1);
    absl::Status s = ReadToOnce(ch, todo);
    if (s.code() == absl::StatusCode::kDeadlineExceeded) return s;  // retried whole
    RETURN_IF_ERROR(s);
    std::vector<ReadOp> lost;
    for (const ReadOp& op : todo) {
      if (Checksum(op.into) != op.checksum) lost.push_back(op);
    }
    if (lost.empty()) return absl::OkStatus();
    todo = std::move(lost);
    return absl::DataLossError(absl::StrFormat("%u pages arrived damaged", todo.size()));
  });
}

// UC writes can be lost or torn without a completion error: the node checks
// each range's checksum and what did not arrive whole is written again.
absl::Status VerbsNodeIo::WriteVerifiedOn(Channel& ch, std::span<const WriteOp> ops) {
  std::vector<WriteOp> todo(ops.begin(), ops.end());
  return RetryLostTransfers(options_.uc_max_attempts, [&](int attempt) -> absl::Status {
    if (attempt > 1) retries_.fetch_add(1);
    RETURN_IF_ERROR(WriteOn(ch, todo));
    std::vector<bool> lost;
    RETURN_IF_ERROR(VerifyOnNode(ch, todo, &lost));
    std::vector<WriteOp> again;
    for (size_t i = 0; i < todo.size(); ++i) {
      if (lost[i]) again.push_back(todo[i]);
    }
    if (again.empty()) return absl::OkStatus();
    todo = std::move(again);
    return absl::DataLossError(absl::StrFormat("%u pages did not arrive whole", todo.size()));
  });
}

// RC: a transfer whose completions never came is tried once more on a new
// queue pair before the node is called unreachable. Soft-RoCE on a loaded
// machine has been seen to leave one QP stuck for good while a new one works;
// a real fabric that loses the node fails the new connection at once. Both
// operations may be repeated: a read, or a write into a range reserved for
// this put and not yet committed.
absl::Status VerbsNodeIo::Transfer(const std::string& address,
                                   absl::FunctionRef<absl::Status(Channel&)> over_rdma,
                                   absl::FunctionRef<absl::Status()> over_fallback) {
  if (!ServedByFallback(address)) {
    ASSIGN_OR_RETURN(auto channel, Acquire(address));
    if (channel != nullptr) {
      rdma_requests_.fetch_add(1);
      absl::Status s = over_rdma(*channel);
      if (mode_ == RdmaMode::kRC && s.code() == absl::StatusCode::kDeadlineExceeded) {
        retries_.fetch_add(1);
        channel.reset();  // destroying the stuck QP ends any late DMA into our memory
        absl::StatusOr<std::unique_ptr<Channel>> fresh = Open(address);
        if (fresh.ok() && *fresh != nullptr) {
          channel = *std::move(fresh);
          s = over_rdma(*channel);
        }
        s = NodeUnreachableIfStuck(s);
      }
      Release(std::move(channel));
      return s;
    }
  }
  fallback_requests_.fetch_add(1);
  return over_fallback();
}

absl::Status VerbsNodeIo::Write(const std::string& address, std::span<const WriteOp> ops) {
  return Transfer(
      address,
      [&](Channel& ch) {
        return mode_ == RdmaMode::kRC ? WriteOn(ch, ops) : WriteVerifiedOn(ch, ops);
      },
      [&] { return fallback_->Write(address, ops); });
}

absl::Status VerbsNodeIo::Read(const std::string& address, std::span<const ReadOp> ops) {
  return Transfer(
      address, [&](Channel& ch) { return ReadOn(ch, ops); },
      [&] { return fallback_->Read(address, ops); });
}

}  // namespace unipool
