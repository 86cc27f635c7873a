// unipool administration: where objects live, pins, eviction, drains, the
// pool's state, listings and request metrics. For tools and operators;
// engines need only unipool/client.h.
//
//   auto admin = unipool::Admin::Connect({.directory = "10.0.0.1:7300"});
//   absl::StatusOr<unipool::PoolState> pool = (*admin)->State();
//
// Error codes are those of unipool/client.h. Every call is one or a few
// directory round trips (Drain polls until done).
//
// Thread safety: thread-safe, like the Client it uses.
#ifndef UNIPOOL_ADMIN_H_
#define UNIPOOL_ADMIN_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "unipool/client.h"
#include "unipool/pool_types.h"

namespace unipool {

class Admin {
 public:
  // Connects a client of its own (Client::Connect's errors).
  static absl::StatusOr<std::unique_ptr<Admin>> Connect(const ClientOptions& options);
  // Shares `client`'s connections. REQUIRES: `client` outlives the Admin.
  explicit Admin(Client& client);
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Where the object lives: every copy's node (and whether it is up), its
  // length, version and checksum. Leases it like a get. NotFound when absent.
  absl::StatusOr<ObjectInfo> Stat(std::string_view key);

  // Pins a key (or, with prefix, every key starting with it, including keys
  // put later): pinned objects are never evicted. A key not put yet may be
  // pinned. Durable across directory restarts. InvalidArgument for a bad key.
  absl::Status Pin(std::string_view key_or_prefix, bool prefix = false);
  // Removes a pin made by Pin with the same arguments. NotFound when there
  // was no such pin.
  absl::Status Unpin(std::string_view key_or_prefix, bool prefix = false);

  // Evicts every unpinned, unleased object whose key starts with `prefix`
  // (empty: all) and returns how many went.
  absl::StatusOr<uint64_t> Evict(std::string_view prefix);
  // The same for one tier (docs/flash.md): kMemory frees memory copies (an
  // object whose node's flash holds it stays, on flash), kFlash forgets
  // flash copies, kAll removes the objects. Returns how many objects lost a
  // copy.
  absl::StatusOr<uint64_t> Evict(std::string_view prefix, EvictTier tier);

  // Moves every copy off node `node` (its name or data address), node to
  // node while reads go on; OK when the node holds nothing and may be powered
  // off. It takes no new objects until Undrain. NotFound for an unknown node;
  // ResourceExhausted (or NotFound for objects with no live copy) when the
  // drain makes no progress for 3 s: the node stays draining.
  absl::Status Drain(std::string_view node);
  // Takes a drained or draining node back into placement. NotFound for an
  // unknown node.
  absl::Status Undrain(std::string_view node);

  // Every node and the pool's totals (and a replicated pool's directories).
  absl::StatusOr<PoolState> State();

  // Asks the leading directory of a replicated pool to hand its leadership
  // over (docs/operations.md): OK once it accepted; it then stops serving,
  // lets a standby catch up, resigns and exits, and the standby leads.
  // Needs the cluster key or an admin token without a prefix
  // (PermissionDenied otherwise). FailedPrecondition from a lone directory
  // or when no standby is in sync.
  absl::Status StepDown();

  // Up to `limit` (1..16384) committed keys starting with `prefix`, after
  // `start_after` in bytewise order. Costs the directory a scan of its map.
  // InvalidArgument for a limit out of range or a prefix longer than a key.
  absl::StatusOr<ListResult> List(std::string_view prefix, size_t limit = 1000,
                                  std::string_view start_after = {});

  // Request totals and the last `history_seconds` (at most 600) seconds.
  absl::StatusOr<PoolMetrics> Metrics(int history_seconds = 60);

 private:
  std::unique_ptr<Client> owned_;  // set by Connect
  Client::Impl* impl_;
};

}  // namespace unipool

#endif  // UNIPOOL_ADMIN_H_
