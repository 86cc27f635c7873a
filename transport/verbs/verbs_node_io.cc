#include "unipool/verbs/verbs_node_io.h"

#include <cstring>
#include <functional>

#include "absl/strings/str_format.h"
#include "unipool/common/checksum.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/platform/memory.h"
#include "verbs_paths_internal.h"

namespace unipool {

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

absl::StatusOr<std::unique_ptr<VerbsNodeIo::Channel>> VerbsNodeIo::Acquire(Path& path) {
  {
    absl::MutexLock lock(&mu_);
    if (!path.idle.empty()) {
      auto channel = std::move(path.idle.back());
      path.idle.pop_back();
      return channel;
    }
  }
  return Open(path);
}

void VerbsNodeIo::Release(std::unique_ptr<Channel> channel) {
  if (channel == nullptr || channel->broken()) return;
  absl::MutexLock lock(&mu_);
  auto& idle = channel->path->idle;
  if (idle.size() < 8) idle.push_back(std::move(channel));
}

absl::StatusOr<std::unique_ptr<VerbsNodeIo::Channel>> VerbsNodeIo::Open(Path& path) {
  auto channel = std::make_unique<Channel>();
  channel->path = &path;
  ASSIGN_OR_RETURN(channel->control, Connection::Open(path.address, connection_options_));
  ASSIGN_OR_RETURN(channel->qp, QueuePair::Create(*path.local, path.mode));
  // Receives for immediates: UC gets end with one, and so does a probe.
  RETURN_IF_ERROR(channel->qp->PostReceives(channel->qp->depth()));

  flatbuffers::FlatBufferBuilder fbb;
  auto endpoint = EndpointToWire(fbb, channel->qp->local());
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> node_gid;
  if (!path.legacy) node_gid = fbb.CreateVector(path.remote.gid.data(), path.remote.gid.size());
  FinishMessage(fbb, wire::CreateRdmaConnect(
                         fbb, path.mode == RdmaMode::kRC ? wire::RdmaMode::RC : wire::RdmaMode::UC,
                         endpoint, node_gid));
  ASSIGN_OR_RETURN(ReceivedFrame reply, ControlCall(*channel, fbb));
  const wire::RdmaConnectReply* r = reply.message()->body_as_RdmaConnectReply();
  if (r == nullptr) return absl::InternalError("unexpected reply to RdmaConnect");
  ASSIGN_OR_RETURN(QpEndpoint node, EndpointFromWire(r->node()));
  RETURN_IF_ERROR(channel->qp->Connect(node));
  channel->qp->WatchPeer(channel->control->fd());
  if (r->max_message() > 0) channel->qp->LimitMessageSize(r->max_message());
  channel->slab_addr = r->slab_addr();
  channel->slab_rkey = r->slab_rkey();
  return channel;
}

absl::StatusOr<ReceivedFrame> VerbsNodeIo::ControlCall(Channel& ch,
                                                       const flatbuffers::FlatBufferBuilder& fbb) {
  const RdmaDevice* device = ch.path->local;
  PortWatchdog::Guard guard =
      watchdog_.Watch([device] { return device->PortActive(); }, ch.control->fd());
  absl::StatusOr<ReceivedFrame> reply = ch.control->Call(fbb);
  if (!reply.ok() && guard.fired()) {
    return absl::UnavailableError(
        absl::StrFormat("%s port %u went down during the request", device->name(), device->port()));
  }
  return reply;
}

absl::Status VerbsNodeIo::RegisterBuffer(void* data, size_t size) {
  if (data == nullptr || size == 0) return absl::InvalidArgumentError("empty buffer");
  auto start = reinterpret_cast<uintptr_t>(data);
  std::vector<RdmaDevice*> devices = ports_->Opened();
  absl::MutexLock lock(&mu_);
  auto next = registered_.lower_bound(start);
  if (next != registered_.end() && next->first < start + size) {
    return absl::AlreadyExistsError("buffer overlaps one already registered");
  }
  if (next != registered_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.size > start) {
      return absl::AlreadyExistsError("buffer overlaps one already registered");
    }
  }
  Registered buffer;
  buffer.size = size;
  for (RdmaDevice* device : devices) {
    ASSIGN_OR_RETURN(auto mr, device->Register(data, size, /*remote=*/true));
    buffer.regions.emplace_back(device, std::move(mr));
  }
  registered_.emplace(start, std::move(buffer));
  return absl::OkStatus();
}

absl::Status VerbsNodeIo::UnregisterBuffer(void* data) {
  absl::MutexLock lock(&mu_);
  if (registered_.erase(reinterpret_cast<uintptr_t>(data)) == 0) {
    return absl::NotFoundError("buffer was not registered");
  }
  return absl::OkStatus();
}

std::optional<RegionKeys> VerbsNodeIo::RegisteredKeys(const RdmaDevice& device, const void* data,
                                                      size_t size) {
  auto start = reinterpret_cast<uintptr_t>(data);
  absl::MutexLock lock(&mu_);
  auto it = registered_.upper_bound(start);
  if (it == registered_.begin()) return std::nullopt;
  --it;
  for (const auto& [owner, mr] : it->second.regions) {
    if (owner == &device && mr->Contains(data, size)) return RegionKeys{mr->lkey(), mr->rkey()};
  }
  return std::nullopt;
}

// Moves segments between user memory and the slab in rounds that fit the
// staging buffer. Registered memory is used in place; the rest is copied
// into staging before a write and out of it after a read. `run` performs one
// round.
absl::Status VerbsNodeIo::Staged(
    Channel& ch, std::span<const Segment> segments, bool to_node,
    const std::function<absl::Status(std::span<const LocalPiece>)>& run) {
  if (ch.staging_mr == nullptr) {  // made on first use: probes and zero-copy need none
    ASSIGN_OR_RETURN(ch.staging, platform::AnonymousPages::Allocate(options_.staging_bytes));
    ASSIGN_OR_RETURN(ch.staging_mr,
                     ch.path->local->Register(ch.staging.get(), options_.staging_bytes,
                                              /*remote=*/true));
  }
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
    if (std::optional<RegionKeys> keys = RegisteredKeys(*ch.path->local, seg.user, seg.length)) {
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
  ASSIGN_OR_RETURN(ReceivedFrame reply, ControlCall(ch, fbb));
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
      RETURN_IF_ERROR(ControlCall(ch, fbb).status());
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
  if (ch.path->mode == RdmaMode::kRC) {
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
  RETURN_IF_ERROR(RetryLostTransfers(options_.uc_max_attempts, [&](int attempt) -> absl::Status {
    if (attempt > 1) CountRetry(*ch.path);
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
  }));
  // Every op's bytes matched its checksum above: tell the caller, so the
  // client does not hash every page a second time (a whole pass over the
  // bytes, as long as the copy itself on a slow core).
  for (const ReadOp& op : ops) {
    if (op.verified != nullptr) *op.verified = true;
  }
  return absl::OkStatus();
}

// UC writes can be lost or torn without a completion error: the node checks
// each range's checksum and what did not arrive whole is written again.
absl::Status VerbsNodeIo::WriteVerifiedOn(Channel& ch, std::span<const WriteOp> ops) {
  std::vector<WriteOp> todo(ops.begin(), ops.end());
  return RetryLostTransfers(options_.uc_max_attempts, [&](int attempt) -> absl::Status {
    if (attempt > 1) CountRetry(*ch.path);
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

void VerbsNodeIo::CountRetry(Path& path) {
  retries_.fetch_add(1);
  path.retries.fetch_add(1);
}

}  // namespace unipool
