// The pure logic of RDMA paths, apart from any device so it can be unit
// tested: which local port may reach which port of a node, how a batch is
// spread over the paths that do, and when a failed path is tried again.
//
// A path is one local port joined to one port of a node by the fabric: on a
// Thunderbolt mesh, one cable. Several cables between two Macs are several
// paths to the same node.
//
// Thread safety: pure functions; PathBackoff is a plain value.
#ifndef UNIPOOL_VERBS_PATH_PLAN_H_
#define UNIPOOL_VERBS_PATH_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "unipool/pool_types.h"

namespace unipool {

// Both ports' GIDs are IPv4-mapped and each one's address lies in the
// other's subnet (prefixes unknown: false).
bool SameSubnet(const RdmaPortInfo& a, const RdmaPortInfo& b);

// `addresses` (a node's advertised TCP addresses, "a:p,b:p") without those
// on the subnet of one of `down` (the node's ports at the far end of paths
// taken out of use), in their order; all of them when that would leave
// none. A pulled cable's address costs a connect timeout, or a connection
// that hangs until its I/O timeout, before the next address is tried: the
// TCP fallback of a failed path goes to the others first. Hosts that are
// not IPv4 literals are kept. With a prefix unknown, only the port's own
// address is dropped.
std::string AddressesAvoiding(const std::string& addresses, std::span<const RdmaPortInfo> down);
// Whether `address` ("host:port", an IPv4 literal) is the address of one of
// `ports` or on its subnet: a connection to it runs over that port's cable.
bool AddressOnPorts(std::string_view address, std::span<const RdmaPortInfo> ports);
// For a long-lived connection to `connected`, one of `addresses` (a node's
// link to the directory): the addresses to dial instead when `connected` is
// on a port of `ports` that is down (a pulled cable: a request on it waits
// out its I/O timeout); empty when it may stay (its port is up or unknown,
// or every other address is on a down port too).
std::string AddressesOffDownPorts(std::string_view connected, const std::string& addresses,
                                  std::span<const RdmaPortInfo> ports);

struct PathCandidate {
  size_t local = 0;   // index into the local ports
  size_t remote = 0;  // index into the node's ports
  bool same_subnet = false;
  bool operator==(const PathCandidate&) const = default;
};

// The pairs of active local and remote ports worth probing, best first:
// those on the same IPv4 subnet, then the rest (every Thunderbolt port has a
// link-local 169.254/16 address, so a subnet match is only a hint; the probe
// decides). With `need_rc`, only pairs where both ends offer RC.
std::vector<PathCandidate> CandidatePaths(std::span<const RdmaPortInfo> local,
                                          std::span<const RdmaPortInfo> remote, bool need_rc);

// Walks `candidates` in order and keeps each one whose ports are both still
// unused and for which `reaches` (the probe) says yes: a cable joins exactly
// two ports, so each port is in at most one path.
template <typename Probe>
std::vector<PathCandidate> ChoosePaths(std::span<const PathCandidate> candidates, Probe reaches) {
  std::vector<PathCandidate> chosen;
  auto used = [&](const PathCandidate& c) {
    for (const PathCandidate& p : chosen) {
      if (p.local == c.local || p.remote == c.remote) return true;
    }
    return false;
  };
  for (const PathCandidate& c : candidates) {
    if (!used(c) && reaches(c)) chosen.push_back(c);
  }
  return chosen;
}

// A usable path's share-worthiness: its link rate and what it already has
// queued from other calls.
struct PathLoad {
  uint32_t rate_mbps = 0;  // 0 = unknown: counted as the slowest known rate
  uint64_t queued_bytes = 0;
};

// The path each item goes over: largest items first, each to the path that
// would finish its queue soonest (queued + assigned bytes over its rate).
// With equal rates and nothing queued this splits bytes evenly. REQUIRES:
// !paths.empty().
std::vector<size_t> SpreadOverPaths(std::span<const uint64_t> item_bytes,
                                    std::span<const PathLoad> paths);

// One item cut for several paths: [offset, offset + length) over `path`.
struct PathPiece {
  size_t path = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};
// Cuts an item of `length` bytes over `paths` in proportion to their rates,
// at `align`-byte boundaries; items under `min_split` bytes, or one path,
// give one piece on the fastest path. REQUIRES: !paths.empty(), align > 0.
std::vector<PathPiece> SplitOverPaths(uint64_t length, std::span<const PathLoad> paths,
                                      uint64_t min_split, uint64_t align);

// When a failed path is tried again: after 1 s, then twice as long after
// each failure in a row, at most 10 s; a success resets it.
class PathBackoff {
 public:
  void Failed(absl::Time now);
  void Succeeded() { failures_ = 0; }
  bool down() const { return failures_ > 0; }
  // Whether a probe may be tried at `now`.
  bool MayRetry(absl::Time now) const { return failures_ == 0 || now >= retry_at_; }
  int failures() const { return failures_; }

 private:
  int failures_ = 0;
  absl::Time retry_at_ = absl::InfinitePast();
};

}  // namespace unipool

#endif  // UNIPOOL_VERBS_PATH_PLAN_H_
