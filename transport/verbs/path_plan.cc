#include "unipool/verbs/path_plan.h"

#include <arpa/inet.h>

#include <algorithm>
#include <numeric>
#include <optional>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "unipool/common/rdma_port.h"

namespace unipool {
namespace {

bool InSubnet(uint32_t ip, uint32_t net_ip, uint8_t prefix) {
  if (prefix == 0 || prefix > 32) return false;
  uint32_t mask = prefix == 32 ? ~0u : ~(~0u >> prefix);
  return (ip & mask) == (net_ip & mask);
}

// Unknown rates count as the slowest known one (or 1 when none is known),
// so a port that cannot tell its speed still gets a share.
std::vector<double> EffectiveRates(std::span<const PathLoad> paths) {
  uint32_t slowest = 0;
  for (const PathLoad& p : paths) {
    if (p.rate_mbps > 0 && (slowest == 0 || p.rate_mbps < slowest)) slowest = p.rate_mbps;
  }
  std::vector<double> rates;
  for (const PathLoad& p : paths) {
    rates.push_back(p.rate_mbps > 0 ? p.rate_mbps : std::max<uint32_t>(slowest, 1));
  }
  return rates;
}

}  // namespace

bool AddressOnPorts(std::string_view address, std::span<const RdmaPortInfo> ports) {
  std::string host(address.substr(0, address.rfind(':')));
  in_addr parsed{};
  if (inet_pton(AF_INET, host.c_str(), &parsed) != 1) return false;
  uint32_t ip = ntohl(parsed.s_addr);
  for (const RdmaPortInfo& port : ports) {
    std::optional<uint32_t> port_ip = Ipv4OfGid(port.gid);
    if (!port_ip) continue;
    if (ip == *port_ip || InSubnet(ip, *port_ip, port.ipv4_prefix)) return true;
  }
  return false;
}

std::string AddressesAvoiding(const std::string& addresses, std::span<const RdmaPortInfo> down) {
  std::vector<std::string> kept;
  for (absl::string_view one : absl::StrSplit(addresses, ',', absl::SkipEmpty())) {
    if (!AddressOnPorts(std::string_view(one.data(), one.size()), down)) kept.emplace_back(one);
  }
  return kept.empty() ? addresses : absl::StrJoin(kept, ",");
}

std::string AddressesOffDownPorts(std::string_view connected, const std::string& addresses,
                                  std::span<const RdmaPortInfo> ports) {
  std::vector<RdmaPortInfo> down;
  for (const RdmaPortInfo& port : ports) {
    if (!port.active) down.push_back(port);
  }
  if (down.empty() || !AddressOnPorts(connected, down)) return "";
  // Unchanged only when every address is on a down port (`connected` is).
  std::string others = AddressesAvoiding(addresses, down);
  return others == addresses ? "" : others;
}

bool SameSubnet(const RdmaPortInfo& a, const RdmaPortInfo& b) {
  std::optional<uint32_t> ip_a = Ipv4OfGid(a.gid), ip_b = Ipv4OfGid(b.gid);
  if (!ip_a || !ip_b) return false;
  return InSubnet(*ip_a, *ip_b, b.ipv4_prefix) && InSubnet(*ip_b, *ip_a, a.ipv4_prefix);
}

std::vector<PathCandidate> CandidatePaths(std::span<const RdmaPortInfo> local,
                                          std::span<const RdmaPortInfo> remote, bool need_rc) {
  std::vector<PathCandidate> out;
  for (size_t l = 0; l < local.size(); ++l) {
    for (size_t r = 0; r < remote.size(); ++r) {
      if (!local[l].active || !remote[r].active) continue;
      if (need_rc && !(local[l].rc && remote[r].rc)) continue;
      out.push_back({l, r, SameSubnet(local[l], remote[r])});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const PathCandidate& a, const PathCandidate& b) {
    return a.same_subnet > b.same_subnet;
  });
  return out;
}

std::vector<size_t> SpreadOverPaths(std::span<const uint64_t> item_bytes,
                                    std::span<const PathLoad> paths) {
  std::vector<size_t> assignment(item_bytes.size(), 0);
  if (paths.size() <= 1) return assignment;
  std::vector<double> rates = EffectiveRates(paths);
  std::vector<double> queued;
  for (const PathLoad& p : paths) queued.push_back(static_cast<double>(p.queued_bytes));
  std::vector<size_t> order(item_bytes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return item_bytes[a] > item_bytes[b]; });
  for (size_t item : order) {
    size_t best = 0;
    double best_finish = 0;
    for (size_t p = 0; p < paths.size(); ++p) {
      double finish = (queued[p] + static_cast<double>(item_bytes[item])) / rates[p];
      if (p == 0 || finish < best_finish) {
        best = p;
        best_finish = finish;
      }
    }
    assignment[item] = best;
    queued[best] += static_cast<double>(item_bytes[item]);
  }
  return assignment;
}

std::vector<PathPiece> SplitOverPaths(uint64_t length, std::span<const PathLoad> paths,
                                      uint64_t min_split, uint64_t align) {
  std::vector<double> rates = EffectiveRates(paths);
  size_t fastest = std::max_element(rates.begin(), rates.end()) - rates.begin();
  if (paths.size() == 1 || length < min_split) return {{fastest, 0, length}};
  double total_rate = std::accumulate(rates.begin(), rates.end(), 0.0);
  std::vector<PathPiece> pieces;
  uint64_t at = 0;
  for (size_t p = 0; p < paths.size() && at < length; ++p) {
    uint64_t share = static_cast<uint64_t>(static_cast<double>(length) * rates[p] / total_rate);
    share = share / align * align;
    if (p + 1 == paths.size() || at + share > length) share = length - at;
    if (share == 0) continue;
    pieces.push_back({p, at, share});
    at += share;
  }
  return pieces;
}

void PathBackoff::Failed(absl::Time now) {
  ++failures_;
  absl::Duration wait = absl::Seconds(1) * (1 << std::min(failures_ - 1, 4));
  retry_at_ = now + std::min(wait, absl::Seconds(10));
}

}  // namespace unipool
