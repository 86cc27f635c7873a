// A node's link to the directory: registers the slab, sends heartbeats, and
// reconnects with exponential backoff whenever the directory goes away, so a
// directory restart costs the node nothing. Given several directory
// addresses, it dials none on the subnet of an RDMA port that is down (a
// pulled Thunderbolt cable), and leaves a connection over such a port at the
// next beat, or at once when a beat is in flight (a PortWatchdog).
//
// Thread safety: Start/Stop from one thread; runs its own thread.
#ifndef UNIPOOL_NODE_DIRECTORY_LINK_H_
#define UNIPOOL_NODE_DIRECTORY_LINK_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "unipool/node/node_identity.h"
#include "unipool/node/node_service.h"
#include "unipool/pool_types.h"

namespace unipool {

class Connection;

struct DirectoryLinkOptions {
  std::string directory_address;
  std::string name;          // stable node identity
  std::string host;          // machine identity
  std::string data_address;  // where clients reach the data path
  std::vector<std::string> transports = {"tcp"};
  // When set, asked at registration and before every heartbeat: the node's
  // RDMA ports and their state. A change is sent with the next beat; a port
  // that goes down is a path lost, never the node (TCP still serves it).
  std::function<std::vector<RdmaPortInfo>()> rdma_ports;
  // When set: the node has a flash tier (registered with its capacity), and
  // its counters go with every heartbeat.
  std::function<FlashStoreCounts()> flash_counts;
  // When set: called (on the link's thread) after a registration that did
  // not keep the slab, with the node's id: the node then announces its
  // flash pages (FlashAnnouncer).
  std::function<void(uint32_t node_id)> on_new_slab;
  // Default 1 s; the directory marks a node down after several missed beats.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Reconnect backoff doubles from the minimum up to the maximum. For
  // `fast_retry_window` after losing a directory it was registered with, the
  // node retries at least every `fast_retry_backoff` instead: a restarting
  // directory sees its nodes again within ~100 ms of listening, while a
  // directory gone for good is not dialled 10 times a second for ever.
  absl::Duration min_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration fast_retry_backoff = absl::Milliseconds(100);
  absl::Duration fast_retry_window = absl::Seconds(60);
};

class DirectoryLink {
 public:
  // `state` (identity and pool id; the link records the pool it joins) must
  // outlive the link.
  DirectoryLink(DirectoryLinkOptions options, const Slab* slab, const NodeDataCounters* counters,
                NodeIdentity* state);
  ~DirectoryLink();

  void Start();
  void Stop();
  // Number of successful registrations so far (tests and logs).
  int registrations() const { return registrations_.load(); }

 private:
  void Run();
  // Registers and beats until the connection fails or Stop is called.
  absl::Status Session();
  // Sends RegisterNode on `conn`; returns the node id and remembers the pool
  // (and in `readmitted` whether the directory kept the slab's objects).
  absl::StatusOr<uint32_t> Register(Connection& conn, bool& readmitted);
  std::vector<RdmaPortInfo> CurrentPorts() const;
  static void LogPortChanges(const std::vector<RdmaPortInfo>& before,
                             const std::vector<RdmaPortInfo>& after);
  // Waits for the next heartbeat time; true when Stop was called. Returns
  // early (false) when the directory closed the connection `fd`.
  bool WaitForBeat(int fd);

  const DirectoryLinkOptions options_;
  const Slab* const slab_;
  const NodeDataCounters* const counters_;
  NodeIdentity* const state_;
  absl::Notification stop_;
  std::atomic<int> registrations_{0};
  // The ports as last told to the directory (the link's thread only).
  std::vector<RdmaPortInfo> sent_ports_;
  std::thread thread_;
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_DIRECTORY_LINK_H_
