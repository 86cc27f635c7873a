// VerbsNodeIo: one call's items spread over a node's paths, a failed path's
// share moved to the others and then to TCP, and the public Write and Read
// (see verbs_node_io.h).
#include <numeric>
#include <thread>

#include "unipool/common/checksum.h"
#include "unipool/common/status_macros.h"
#include "verbs_paths_internal.h"

namespace unipool {
namespace {

// Failures that mean the path (cable, port, queue pair) is in doubt, so the
// same transfer may succeed elsewhere. Anything else (a refused capability,
// a bad request) would fail on every path alike.
bool IsPathFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded || s.code() == absl::StatusCode::kDataLoss;
}

// Pieces are cut at page boundaries so every piece stays page-aligned in
// the slab and in registered buffers.
constexpr uint64_t kSplitAlign = 4096;

template <typename Op>
std::vector<Op> Gather(const std::vector<Op>& items, std::span<const size_t> which) {
  std::vector<Op> out;
  out.reserve(which.size());
  for (size_t i : which) out.push_back(items[i]);
  return out;
}

// `ops` with each value of `min_bytes` or more cut over the paths in
// proportion to their rates (when `may_cut` and there are several paths);
// `piece_of(op, piece)` makes a piece's op.
template <typename Op, typename SizeOf, typename PieceOf>
std::vector<Op> CutLargeOps(std::span<const Op> ops, const std::vector<PathLoad>& loads,
                            uint64_t min_bytes, bool may_cut, SizeOf size_of, PieceOf piece_of) {
  std::vector<Op> items;
  for (const Op& op : ops) {
    if (!may_cut || loads.size() < 2 || size_of(op) < min_bytes) {
      items.push_back(op);
      continue;
    }
    for (const PathPiece& piece : SplitOverPaths(size_of(op), loads, min_bytes, kSplitAlign)) {
      items.push_back(piece_of(op, piece));
    }
  }
  return items;
}

}  // namespace

absl::Status VerbsNodeIo::RunOnPath(Path& path, std::span<const size_t> items, uint64_t bytes,
                                    const RunOnChannel& run) {
  ASSIGN_OR_RETURN(std::unique_ptr<Channel> channel, Acquire(path));
  path.queued_bytes.fetch_add(bytes);
  absl::Status s = run(*channel, items);
  path.queued_bytes.fetch_sub(bytes);
  if (s.ok()) {
    path.bytes.fetch_add(bytes);
    path.requests.fetch_add(1);
  }
  Release(std::move(channel));
  return s;
}

absl::Status VerbsNodeIo::RunShare(Peer& peer, std::vector<Path*> paths, Path& first,
                                   std::span<const size_t> items,
                                   std::span<const uint64_t> item_bytes, const RunOnChannel& run,
                                   const RunFallback& fallback) {
  uint64_t bytes = 0;
  for (size_t i : items) bytes += item_bytes[i];
  Path* path = &first;
  for (;;) {
    absl::Status s = RunOnPath(*path, items, bytes, run);
    if (s.ok() || !IsPathFailure(s)) return s;
    PathFailed(peer, *path, s);
    std::erase(paths, path);
    path = nullptr;
    {
      absl::MutexLock lock(&mu_);
      for (Path* other : paths) {
        if (!other->backoff.down()) {
          path = other;
          break;
        }
      }
    }
    if (path == nullptr) break;
  }
  fallback_requests_.fetch_add(1);
  return fallback(items);
}

absl::Status VerbsNodeIo::Spread(Peer& peer, const std::vector<Path*>& paths,
                                 std::span<const uint64_t> item_bytes, const RunOnChannel& run,
                                 const RunFallback& fallback) {
  std::vector<size_t> all(item_bytes.size());
  std::iota(all.begin(), all.end(), 0);
  if (paths.empty()) {
    fallback_requests_.fetch_add(1);
    return fallback(all);
  }
  rdma_requests_.fetch_add(1);
  if (paths.size() == 1) return RunShare(peer, paths, *paths[0], all, item_bytes, run, fallback);
  std::vector<size_t> assignment = SpreadOverPaths(item_bytes, Loads(paths));
  std::vector<std::vector<size_t>> shares(paths.size());
  for (size_t i = 0; i < assignment.size(); ++i) shares[assignment[i]].push_back(i);
  // Each path's share runs on its own thread: cables are independent links.
  std::vector<absl::Status> results(paths.size());
  std::vector<std::thread> threads;
  for (size_t p = 1; p < paths.size(); ++p) {
    if (shares[p].empty()) continue;
    threads.emplace_back([&, p] {
      results[p] = RunShare(peer, paths, *paths[p], shares[p], item_bytes, run, fallback);
    });
  }
  if (!shares[0].empty()) {
    results[0] = RunShare(peer, paths, *paths[0], shares[0], item_bytes, run, fallback);
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<PathLoad> VerbsNodeIo::Loads(const std::vector<Path*>& paths) {
  std::vector<PathLoad> loads;
  for (Path* p : paths) loads.push_back({p->local->rate_mbps(), p->queued_bytes.load()});
  return loads;
}

absl::Status VerbsNodeIo::Write(const std::string& address, std::span<const WriteOp> ops) {
  Peer& peer = PeerFor(address);
  std::vector<Path*> paths = UsablePaths(peer);
  // A large value is cut over several paths; each piece carries its own
  // checksum, which UC's verification and TCP need.
  std::vector<WriteOp> items = CutLargeOps(
      ops, Loads(paths), options_.split_min_bytes, /*may_cut=*/true,
      [](const WriteOp& op) { return uint64_t{op.bytes.size()}; },
      [](const WriteOp& op, const PathPiece& piece) {
        WriteOp sub = op;
        sub.offset = op.offset + piece.offset;
        sub.bytes = op.bytes.subspan(piece.offset, piece.length);
        sub.checksum = Checksum(sub.bytes);
        return sub;
      });
  std::vector<uint64_t> item_bytes;
  for (const WriteOp& op : items) item_bytes.push_back(op.bytes.size());
  return Spread(
      peer, paths, item_bytes,
      [&](Channel& ch, std::span<const size_t> which) {
        std::vector<WriteOp> share = Gather(items, which);
        return ch.path->mode == RdmaMode::kRC ? WriteOn(ch, share) : WriteVerifiedOn(ch, share);
      },
      [&](std::span<const size_t> which) {
        std::vector<WriteOp> share = Gather(items, which);
        return fallback_->Write(FallbackAddress(peer), share);
      });
}

absl::Status VerbsNodeIo::Read(const std::string& address, std::span<const ReadOp> ops) {
  Peer& peer = PeerFor(address);
  std::vector<Path*> paths = UsablePaths(peer);
  // Only RC reads are cut: a UC read is checked against the whole value's
  // checksum, which no piece has.
  bool all_rc =
      std::all_of(paths.begin(), paths.end(), [](Path* p) { return p->mode == RdmaMode::kRC; });
  std::vector<ReadOp> items = CutLargeOps(
      ops, Loads(paths), options_.split_min_bytes, all_rc,
      [](const ReadOp& op) { return uint64_t{op.into.size()}; },
      [](const ReadOp& op, const PathPiece& piece) {
        ReadOp sub = op;
        sub.offset = op.offset + piece.offset;
        sub.into = op.into.subspan(piece.offset, piece.length);
        sub.checksum = 0;
        sub.verified = nullptr;
        return sub;
      });
  std::vector<uint64_t> item_bytes;
  for (const ReadOp& op : items) item_bytes.push_back(op.into.size());
  return Spread(
      peer, paths, item_bytes,
      [&](Channel& ch, std::span<const size_t> which) { return ReadOn(ch, Gather(items, which)); },
      [&](std::span<const size_t> which) {
        std::vector<ReadOp> share = Gather(items, which);
        return fallback_->Read(FallbackAddress(peer), share);
      });
}

}  // namespace unipool
