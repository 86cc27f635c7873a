#include "unipool/directory/drain_tracker.h"

#include <utility>

namespace unipool {
namespace {

// A drain whose queue ran dry while copies remain rescans the map at most
// this often.
constexpr int64_t kDrainRescanMs = 1000;

}  // namespace

std::optional<ObjectCopy> ChooseMoveSource(std::span<const ObjectCopy> copies, NodeId from,
                                           absl::FunctionRef<bool(NodeId)> node_up) {
  if (node_up(from)) {
    for (const ObjectCopy& c : copies) {
      if (c.node_id == from) return c;
    }
  }
  for (const ObjectCopy& c : copies) {
    if (node_up(c.node_id)) return c;
  }
  return std::nullopt;
}

void DrainTracker::Begin(NodeId node, std::vector<std::string> keys) {
  NodeDrain& drain = nodes_[node];
  drain.queue.assign(std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
  drain.blocked = absl::OkStatus();
}

void DrainTracker::End(NodeId node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  it->second.queue.clear();
  it->second.blocked = absl::OkStatus();
}

void DrainTracker::DropQueue(NodeId node) {
  if (auto it = nodes_.find(node); it != nodes_.end()) it->second.queue.clear();
}

void DrainTracker::Queue(NodeId node, std::string key) {
  nodes_[node].queue.push_back(std::move(key));
}

void DrainTracker::QueueFirst(NodeId node, std::string key) {
  nodes_[node].queue.push_front(std::move(key));
}

std::optional<std::string> DrainTracker::Next(NodeId node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return std::nullopt;
  std::deque<std::string>& queue = it->second.queue;
  while (!queue.empty()) {
    std::string key = std::move(queue.front());
    queue.pop_front();
    if (!moving_.contains(key)) return key;
  }
  return std::nullopt;
}

bool DrainTracker::RescanDue(NodeId node, uint64_t copies, int64_t now_ms) {
  NodeDrain& drain = nodes_[node];
  if (!drain.queue.empty() || copies <= drain.moves_in_flight || now_ms < drain.next_rescan_ms) {
    return false;
  }
  drain.next_rescan_ms = now_ms + kDrainRescanMs;
  return true;
}

void DrainTracker::MoveStarted(NodeId from, std::string key, uint64_t move_id) {
  moving_[std::move(key)] = move_id;
  ++nodes_[from].moves_in_flight;
}

void DrainTracker::MoveEnded(NodeId from, std::string_view key, uint64_t move_id) {
  if (auto it = nodes_.find(from); it != nodes_.end() && it->second.moves_in_flight > 0) {
    --it->second.moves_in_flight;
  }
  if (auto m = moving_.find(key); m != moving_.end() && m->second == move_id) moving_.erase(m);
}

uint64_t DrainTracker::MovesInFlight(NodeId node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : it->second.moves_in_flight;
}

void DrainTracker::SetBlocked(NodeId node, absl::Status reason) {
  nodes_[node].blocked = std::move(reason);
}

absl::Status DrainTracker::Blocked(NodeId node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? absl::OkStatus() : it->second.blocked;
}

}  // namespace unipool
