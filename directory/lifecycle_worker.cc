#include "unipool/directory/lifecycle_worker.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_format.h"
#include "node_connection.h"
#include "unipool/common/connection.h"
#include "unipool/common/log.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/pool_types.h"

namespace unipool {
namespace {

// Copies planned per round: enough to keep a link busy, few enough that the
// directory's lock is never held long planning them.
constexpr size_t kMovesPerRound = 64;
// Demotions planned per round: each is a memory copy on its node, so a
// round costs the nodes one request each and no network bytes.
constexpr size_t kDemotionsPerRound = 128;
// One Copy or Checksum request covers at most this many bytes and ranges.
constexpr uint64_t kMaxBytesPerRequest = 256ull << 20;
constexpr size_t kMaxRangesPerRequest = 4096;
static_assert(kMaxBytesPerRequest <= FrameLimits{}.max_payload_bytes);
static_assert(kMaxRangesPerRequest <= kMaxBatchItems);
// Idle wait between rounds when there is nothing to do.
constexpr absl::Duration kIdle = absl::Milliseconds(100);
// After rounds with failures (a node unreachable, copies that do not match
// their checksum) the wait doubles per failing round up to this, so a move
// that keeps failing is retried a few times a minute, not thousands of times
// a second.
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

// Cuts [0, n) into pieces of at most kMaxRangesPerRequest items and
// kMaxBytesPerRequest bytes (an item larger than that goes alone).
template <typename LengthOf, typename Fn>
void InPieces(size_t n, LengthOf length_of, Fn fn) {
  size_t first = 0;
  while (first < n) {
    size_t last = first;
    uint64_t bytes = 0;
    while (last < n && last - first < kMaxRangesPerRequest &&
           (last == first || bytes + length_of(last) <= kMaxBytesPerRequest)) {
      bytes += length_of(last);
      ++last;
    }
    fn(first, last);
    first = last;
  }
}

// XXH3-64 of each range of the node's slab at `address`.
absl::StatusOr<std::vector<uint64_t>> ChecksumRanges(Connection& conn,
                                                     const std::vector<wire::Range>& ranges) {
  flatbuffers::FlatBufferBuilder fbb;
  auto vec = fbb.CreateVectorOfStructs(ranges);
  FinishMessage(fbb, wire::CreateChecksum(fbb, vec));
  ASSIGN_OR_RETURN(ReceivedFrame reply, conn.Call(fbb));
  const wire::ChecksumReply* r = reply.message()->body_as_ChecksumReply();
  if (r == nullptr || r->checksums() == nullptr || r->checksums()->size() != ranges.size()) {
    return absl::InternalError(
        absl::StrFormat("unexpected reply to Checksum from %s", conn.address()));
  }
  return std::vector<uint64_t>(r->checksums()->begin(), r->checksums()->end());
}

}  // namespace

absl::Duration LifecycleWorker::Backoff(int failed_rounds) {
  absl::Duration wait = kIdle;
  for (int i = 0; i < failed_rounds && wait < kMaxBackoff; ++i) wait *= 2;
  return std::min(wait, kMaxBackoff);
}

void LifecycleWorker::Start() {
  revoker_.Start();
  thread_ = std::thread([this] { Run(); });
}

void LifecycleWorker::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  revoker_.Stop();
}

void LifecycleWorker::Run() {
  while (!stop_.HasBeenNotified()) {
    bool worked = false;
    failures_ = 0;
    if (std::optional<VerifyPlan> plan = directory_->PlanVerification()) {
      Verify(*plan);
      worked = true;
    }
    std::vector<MovePlan> moves = directory_->PlanMoves(kMovesPerRound);
    if (!moves.empty()) {
      std::map<std::pair<std::string, std::string>, std::vector<MovePlan>> by_pair;
      for (MovePlan& move : moves) {
        by_pair[{move.source_address, move.target_address}].push_back(std::move(move));
      }
      for (const auto& [pair, group] : by_pair) Move(group);
      worked = true;
    }
    if (Demote()) worked = true;
    // Idle, or failing (a node not yet marked down): do not spin.
    failed_rounds_ = failures_ > 0 ? failed_rounds_ + 1 : 0;
    if (!worked || failures_ > 0) stop_.WaitForNotificationWithTimeout(Backoff(failed_rounds_));
  }
}

bool LifecycleWorker::Demote() {
  std::vector<FlashPlan> plans = directory_->PlanDemotions(kDemotionsPerRound);
  if (plans.empty()) return false;
  std::vector<absl::Status> results = flash_.Demote(plans);
  size_t failed = 0;
  for (const absl::Status& s : results) failed += s.ok() ? 0 : 1;
  // Refusals (the node's queue full) are expected under a burst: the object
  // is then dropped at its eviction, as without flash. One line per round.
  if (failed > 0) {
    LogInfo(
        "flash: %u of %u demotions not taken (first: %s)", failed, plans.size(),
        std::find_if(results.begin(), results.end(), [](auto& s) { return !s.ok(); })->ToString());
  }
  directory_->FinishDemotions(plans, results);
  return true;
}

void LifecycleWorker::Verify(const VerifyPlan& plan) {
  std::vector<VerifyItem> bad;
  absl::Status result = [&]() -> absl::Status {
    if (plan.items.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto conn, Connection::Open(plan.address, NodeConnectionOptions()));
    absl::Status status;
    InPieces(
        plan.items.size(), [&](size_t i) { return plan.items[i].length; },
        [&](size_t first, size_t last) {
          if (!status.ok()) return;
          std::vector<wire::Range> ranges;
          for (size_t i = first; i < last; ++i) {
            ranges.emplace_back(plan.items[i].offset, plan.items[i].length);
          }
          auto sums = ChecksumRanges(*conn, ranges);
          if (!sums.ok()) {
            status = sums.status();
            return;
          }
          for (size_t i = first; i < last; ++i) {
            if ((*sums)[i - first] != plan.items[i].checksum) bad.push_back(plan.items[i]);
          }
        });
    return status;
  }();
  if (!result.ok()) ++failures_;
  directory_->FinishVerification(plan, result, bad);
}

void LifecycleWorker::Move(const std::vector<MovePlan>& moves) {
  const std::string& source = moves.front().source_address;
  const std::string& target = moves.front().target_address;
  std::vector<bool> copied(moves.size(), false);
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto from, Connection::Open(source, NodeConnectionOptions()));
    ASSIGN_OR_RETURN(auto to, Connection::Open(target, NodeConnectionOptions()));
    absl::Status piece_status;
    InPieces(
        moves.size(), [&](size_t i) { return moves[i].length; },
        [&](size_t first, size_t last) {
          if (!piece_status.ok()) return;
          std::vector<wire::Range> ranges;
          std::vector<wire::Range> landed;
          std::vector<uint64_t> offsets;
          std::vector<wire::Capability> capabilities;
          std::vector<wire::Capability> target_capabilities;
          for (size_t i = first; i < last; ++i) {
            ranges.emplace_back(moves[i].source_offset, moves[i].length);
            landed.emplace_back(moves[i].target_offset, moves[i].length);
            offsets.push_back(moves[i].target_offset);
            capabilities.push_back(EncodeCapability(moves[i].copy_capability));
            target_capabilities.push_back(EncodeCapability(moves[i].target_capability));
          }
          flatbuffers::FlatBufferBuilder fbb;
          auto r = fbb.CreateVectorOfStructs(ranges);
          auto address = fbb.CreateString(target);
          auto o = fbb.CreateVector(offsets);
          // Pools without a key: no capabilities at all.
          bool granted = moves[first].copy_capability.present();
          auto c = granted ? fbb.CreateVectorOfStructs(capabilities) : 0;
          auto t = granted ? fbb.CreateVectorOfStructs(target_capabilities) : 0;
          FinishMessage(fbb, wire::CreateCopy(fbb, r, address, o, c, t));
          if (auto reply = from->Call(fbb); !reply.ok()) {
            piece_status = reply.status();
            return;
          }
          // Trust nothing: what landed must have the object's checksum.
          auto sums = ChecksumRanges(*to, landed);
          if (!sums.ok()) {
            piece_status = sums.status();
            return;
          }
          for (size_t i = first; i < last; ++i) {
            copied[i] = (*sums)[i - first] == moves[i].checksum;
            if (!copied[i]) {
              ++failures_;
              LogWarning("move of '%s' from %s to %s: the copy does not match its checksum",
                         PrintableKey(moves[i].key), source, target);
            }
          }
        });
    return piece_status;
  }();
  if (!status.ok()) {
    ++failures_;
    LogWarning("moving %u objects from %s to %s failed (retried later): %s", moves.size(), source,
               target, status.ToString());
  }
  for (size_t i = 0; i < moves.size(); ++i) directory_->FinishMove(moves[i], copied[i]);
}

}  // namespace unipool
