#include "unipool/directory/fabric_book.h"

#include <algorithm>

namespace unipool {

void FabricBook::Record(ClientFabric report, absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::pair<std::string, std::string> who{report.host, report.client};
  if (!entries_.contains(who) && entries_.size() >= kMaxClients) {
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const auto& a, const auto& b) { return a.second.received < b.second.received; });
    entries_.erase(oldest);
  }
  entries_[who] = {std::move(report), now};
}

std::vector<ClientFabric> FabricBook::Snapshot(absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<ClientFabric> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.received > kKeepFor) {
      it = entries_.erase(it);
      continue;
    }
    out.push_back(it->second.report);
    out.back().age = now - it->second.received;
    ++it;
  }
  return out;
}

}  // namespace unipool
