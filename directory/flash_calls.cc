#include "unipool/directory/flash_calls.h"

#include "absl/strings/str_format.h"
#include "node_connection.h"
#include "unipool/common/connection.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

// Pages per request, at most (a batch's limit; a lookup names no more).
constexpr size_t kMaxPagesPerRequest = 4096;
static_assert(kMaxPagesPerRequest <= kMaxBatchItems);

}  // namespace

FlashCalls::FlashCalls() = default;
FlashCalls::~FlashCalls() = default;

std::vector<absl::Status> FlashCalls::Call(std::span<const FlashPlan> plans, bool promote) {
  std::vector<absl::Status> results(plans.size());
  std::map<std::string, std::vector<size_t>> by_node;
  for (size_t i = 0; i < plans.size(); ++i) by_node[plans[i].address].push_back(i);
  for (auto& [address, all] : by_node) {
    for (size_t first = 0; first < all.size(); first += kMaxPagesPerRequest) {
      std::vector<size_t> which(all.begin() + first,
                                all.begin() + std::min(all.size(), first + kMaxPagesPerRequest));
      absl::StatusOr<std::vector<absl::Status>> answered = CallNode(address, plans, which, promote);
      for (size_t j = 0; j < which.size(); ++j) {
        results[which[j]] = answered.ok() ? (*answered)[j] : answered.status();
      }
    }
  }
  return results;
}

absl::StatusOr<std::vector<absl::Status>> FlashCalls::CallNode(const std::string& address,
                                                               std::span<const FlashPlan> plans,
                                                               const std::vector<size_t>& which,
                                                               bool promote) {
  std::unique_ptr<Connection> conn;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::unique_ptr<Connection>>& idle = idle_[address];
    if (!idle.empty()) {
      conn = std::move(idle.back());
      idle.pop_back();
    }
  }
  bool reused = conn != nullptr;
  if (!reused) {
    ASSIGN_OR_RETURN(conn, Connection::Open(address, NodeConnectionOptions()));
  }
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::FlashItem>> items;
  items.reserve(which.size());
  for (size_t i : which) {
    const FlashPlan& p = plans[i];
    auto key = fbb.CreateVector(reinterpret_cast<const uint8_t*>(p.key.data()), p.key.size());
    items.push_back(wire::CreateFlashItem(fbb, key, p.version, p.offset, p.length, p.checksum));
  }
  auto vec = fbb.CreateVector(items);
  if (promote) {
    FinishMessage(fbb, wire::CreateFlashPromote(fbb, vec));
  } else {
    FinishMessage(fbb, wire::CreateFlashDemote(fbb, vec));
  }
  absl::StatusOr<ReceivedFrame> answer = conn->Call(fbb);
  if (!answer.ok() && reused) {
    // The node may have closed an idle connection (it restarted): once more
    // on a new one.
    ASSIGN_OR_RETURN(conn, Connection::Open(address, NodeConnectionOptions()));
    answer = conn->Call(fbb);
  }
  ASSIGN_OR_RETURN(ReceivedFrame reply, std::move(answer));
  const wire::StatusList* list = reply.message()->body_as_StatusList();
  if (list == nullptr || list->items() == nullptr || list->items()->size() != which.size()) {
    return absl::InternalError(absl::StrFormat("unexpected reply to %s from %s",
                                               promote ? "FlashPromote" : "FlashDemote", address));
  }
  std::vector<absl::Status> results;
  results.reserve(which.size());
  for (const wire::Status* s : *list->items()) results.push_back(StatusFromWire(s));
  absl::MutexLock lock(&mu_);
  idle_[address].push_back(std::move(conn));
  return results;
}

}  // namespace unipool
