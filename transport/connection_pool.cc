#include "unipool/transport/connection_pool.h"

namespace unipool {

std::unique_ptr<Connection> ConnectionPool::TakeIdle(const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto it = idle_.find(address);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto conn = std::move(it->second.back());
  it->second.pop_back();
  return conn;
}

void ConnectionPool::GiveBack(std::unique_ptr<Connection> conn) {
  if (conn->broken()) return;
  absl::MutexLock lock(&mu_);
  auto& idle = idle_[conn->address()];
  if (static_cast<int>(idle.size()) < max_idle_) idle.push_back(std::move(conn));
}

absl::StatusOr<ReceivedFrame> ConnectionPool::Call(
    const std::string& address, const flatbuffers::FlatBufferBuilder& request,
    std::span<const std::span<const uint8_t>> payload,
    std::span<const std::span<uint8_t>> reply_sinks, const PayloadSent* on_sent) {
  std::unique_ptr<Connection> conn = TakeIdle(address);
  if (conn != nullptr) {
    auto reply = conn->Call(request, payload, reply_sinks, on_sent);
    bool stale = !reply.ok() && reply.status().code() == absl::StatusCode::kUnavailable;
    if (!stale) {
      GiveBack(std::move(conn));
      return reply;
    }
    // Fall through: retry once on a new connection.
  }
  auto fresh = Connection::Open(address, options_);
  if (!fresh.ok()) return fresh.status();
  opened_.fetch_add(1);
  auto reply = (*fresh)->Call(request, payload, reply_sinks, on_sent);
  GiveBack(std::move(*fresh));
  return reply;
}

}  // namespace unipool
