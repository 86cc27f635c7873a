// What a Directory is given at start: timeouts, leases, watermarks, quotas,
// durability and the capability key, each with its default and the reason
// for it.
#ifndef UNIPOOL_DIRECTORY_DIRECTORY_OPTIONS_H_
#define UNIPOOL_DIRECTORY_DIRECTORY_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "unipool/common/capability.h"
#include "unipool/directory/catalog.h"
#include "unipool/directory/client_quota.h"

namespace unipool {

struct DirectoryOptions {
  // A reservation not committed within this time is reclaimed. Default 30 s:
  // an 80 MiB page takes well under a second on any link unipool targets.
  absl::Duration put_timeout = absl::Seconds(30);
  // A node whose last heartbeat is older than this is marked down.
  // Default 5 s (nodes beat every second). A node a client reports
  // unreachable is probed and marked down at once instead (node_health.h).
  absl::Duration node_timeout = absl::Seconds(5);
  // When an acknowledged commit or remove is on disk. Always: it is in
  // RocksDB's log before the acknowledgement (a crash of the directory
  // process loses nothing). kInterval (default): the log is fsync'ed in the
  // background every sync_interval, so a crash of the machine loses at most
  // the last interval of commits (their slab space is reclaimed when the
  // nodes re-register: allocations are rebuilt from the catalog). kAlways:
  // fsync'ed before the acknowledgement, one fsync shared by the commits
  // arriving together, with no directory lock held across it.
  SyncMode sync = SyncMode::kInterval;
  absl::Duration sync_interval = absl::Milliseconds(100);
  // Ships every catalog write to standby directories, and holds each
  // acknowledgement until a majority has it (catalog.h). Default null: a
  // lone directory. Must outlive the directory.
  CatalogReplication* replication = nullptr;
  // After a restart, puts and lookups that need a node known from the
  // catalog but not registered again wait up to this long for it (nodes
  // re-register within ~100 ms of the directory listening). Default 2 s;
  // bounded so that a node that died with the directory costs at most this.
  absl::Duration restart_grace = absl::Seconds(2);
  // A node down this long has its copies re-made on other nodes, node to
  // node (objects with another live copy). Default 10 s: a node restarted
  // with its slab (`--slab-name`) is back well before, and keeps its copies.
  absl::Duration rereplicate_after = absl::Seconds(10);
  // Bytes per second re-replication may copy. Default 256 MiB/s: a fraction
  // of any link unipool targets, so engines' traffic keeps its bandwidth.
  uint64_t rereplicate_bytes_per_second = 256ull << 20;
  // A lookup leases the object for this long: it is not evicted and its
  // memory is not reused before the lease ends (readers may read it without
  // asking again). Default 10 s. Zero: no leases (readers then rely on the
  // checksum alone to detect reuse).
  absl::Duration lease = absl::Seconds(10);
  // Background eviction starts when a node's (or the pool's) used bytes pass
  // high_watermark of its capacity and stops at low_watermark. Defaults 0.90
  // and 0.80: headroom so that puts rarely have to evict synchronously.
  // A put that finds no room evicts what it needs regardless.
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  // A node not heard from for this long (while this directory ran) is
  // forgotten: its record and its copies are dropped (objects with a copy
  // elsewhere survive), and its name is free for a node of another identity.
  // Default 7 days: a machine away for repairs comes back well before.
  absl::Duration forget_node_after = absl::Hours(24 * 7);
  // What one client may hold reserved and uncommitted (client_quota.h).
  ClientQuotaLimits client_quota;
  // A tenant's storage and pin quotas, in allocated bytes, when its token
  // names none (tenants.h). Default 0: unlimited (the cluster key is always
  // unlimited).
  uint64_t tenant_storage_bytes = 0;
  uint64_t tenant_pin_bytes = 0;
  // A pool with a key: every location handed out carries the directory's
  // capability to use it (unipool/common/capability.h; nodes refuse reads,
  // writes and copies without one): write capabilities valid for the
  // reservation's lease, read capabilities for read_capability_lifetime.
  // Default none: a pool without a key issues none.
  std::optional<CapabilityKey> capabilities;
  // Default 10 s, the lease: a lookup holds the object's memory until its
  // read capabilities have expired (plus kCapabilityClockSkew), so a
  // capability never reads memory reused for another object; clients look
  // a key up again once it passes (their location cache trusts no longer).
  absl::Duration read_capability_lifetime = kReadCapabilityLifetime;
  // Time source; tests inject a fake clock.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_DIRECTORY_OPTIONS_H_
