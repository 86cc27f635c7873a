// The directory's durable records and their byte encodings in RocksDB.
// The key and value formats are documented in schema/FORMATS.md.
#ifndef UNIPOOL_DIRECTORY_RECORDS_H_
#define UNIPOOL_DIRECTORY_RECORDS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "unipool/pool_types.h"

namespace unipool {

// What a node's record may hold. Bounded so that every reply naming nodes
// fits a frame (64 MiB of meta): a status of kMaxNodes nodes takes ~5 MiB, a
// lookup of 16,384 keys with 16 copies each ~50 MiB (host and address are
// in every copy), a list page of 16,384 keys ~55 MiB at most (directory.cc
// cuts pages at 16 MiB anyway).
inline constexpr size_t kMaxNodes = 4096;
inline constexpr size_t kMaxNodeNameBytes = 128;
inline constexpr size_t kMaxNodeHostBytes = 64;     // Linux's HOST_NAME_MAX
inline constexpr size_t kMaxNodeAddressBytes = 64;  // "[IPv6]:port" takes 55
inline constexpr size_t kMaxNodeTransports = 16;    // "tcp", "rdma-rc", ...: a handful
inline constexpr size_t kMaxNodeTransportBytes = 32;
inline constexpr uint64_t kMaxNodeSlabBytes = 1ull << 50;  // 1 PiB
// A node identity (secret) is this long at most; the catalog keeps only a
// MAC of it.
inline constexpr size_t kMaxNodeIdentityBytes = 64;

// One copy of an object's bytes: where in which node's slab.
struct ObjectCopy {
  NodeId node_id = 0;
  uint64_t offset = 0;
  bool operator==(const ObjectCopy&) const = default;
};

// A committed, immutable object. It has one or more copies in memory, each on
// a distinct node, or none when it is only on flash. (On disk the first copy
// keeps the original record format and the others follow it:
// schema/FORMATS.md.)
struct ObjectRecord {
  // In memory (the memory tier). Empty only when `flash` is not.
  std::vector<ObjectCopy> copies;
  // The nodes whose flash tier holds this version's bytes (docs/flash.md):
  // with copies, a memory copy that eviction demotes without writing; alone,
  // an object on flash only, read back into memory by a lookup.
  std::vector<NodeId> flash;
  uint64_t length = 0;
  uint64_t version = 0;   // unique across the pool's life, from a counter that only grows
  uint64_t checksum = 0;  // XXH3-64 of the bytes
  int64_t created_unix_ms = 0;
};

// A pin: the key itself, or every key starting with it (prefix).
struct PinRecord {
  std::string key;
  bool prefix = false;
};

// Slab space that belongs to no object but must not be handed out before
// `until`: the memory of a removed or evicted object that a reader may still
// hold a lease on, or the target of an object being moved by a drain.
struct HeldExtent {
  uint64_t id = 0;
  NodeId node_id = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  int64_t until_unix_ms = 0;
};

// Space reserved by PutStart and not yet committed; or a pre-handed
// reservation (returned by a PutCommit for the client's next puts), which
// has no key until its commit names one.
struct PendingPut {
  // Random (never 0), drawn again while it matches a live reservation: the
  // id its client commits with. Nobody can guess another client's.
  uint64_t put_id = 0;
  // The object's version once committed: the directory's counter at
  // reservation, never on the wire as an id to commit with.
  uint64_t version = 0;
  std::string key;                 // empty: pre-handed
  std::vector<ObjectCopy> copies;  // one per copy asked for; never empty
  uint64_t length = 0;
  bool replace = false;
  int64_t deadline_unix_ms = 0;  // reclaimed after this
  // Who reserved it (the token's owner) and what that cost its quota
  // (ClientQuota). The cost is in memory only: reservations read back after
  // a restart count against no one.
  std::string owner;
  uint64_t quota_bytes = 0;
  // The client id that started it (PutStart) or was handed it
  // (pre-handed), the only one that may commit or abort it. A PutStart
  // reservation's holder and owner are persisted: it stays its client's
  // across a directory restart. A pre-handed one's are not: after a restart
  // nobody commits it (it waits for its deadline: its holder may still be
  // writing, and then puts again through PutStart).
  uint64_t holder = 0;
};

// Every copy of `record`, the first one first.
inline const std::vector<ObjectCopy>& CopiesOf(const ObjectRecord& record) { return record.copies; }
inline const std::vector<ObjectCopy>& CopiesOf(const PendingPut& record) { return record.copies; }
// Sets the copies of `record`. REQUIRES: !copies.empty().
inline void SetCopies(ObjectRecord& record, std::span<const ObjectCopy> copies) {
  record.copies.assign(copies.begin(), copies.end());
}
inline void SetCopies(PendingPut& record, std::span<const ObjectCopy> copies) {
  record.copies.assign(copies.begin(), copies.end());
}

// What the directory remembers of a node across restarts.
struct NodeRecord {
  NodeId node_id = 0;
  std::string name;          // stable identity chosen by the node
  std::string host;          // machine identity
  std::string data_address;  // HOST:PORT of its data path
  uint64_t slab_id = 0;      // identifies the slab's memory lifetime
  uint64_t slab_size = 0;
  std::vector<std::string> transports;
  bool draining = false;  // takes no new objects; its objects move away
  // A MAC of the node's identity secret (NodeIdentityDigest); empty for a
  // node that registered without one. Another registration under this name
  // must prove the same identity.
  std::string identity_digest;
  // When the directory last heard from it (refreshed while it is up, at most
  // hourly): records of nodes gone for --forget-node-after are dropped.
  int64_t last_seen_unix_ms = 0;
};

// What the catalog keeps of a node's identity secret (empty for none).
std::string NodeIdentityDigest(std::string_view identity);

std::string EncodeObject(const ObjectRecord& record);
absl::StatusOr<ObjectRecord> DecodeObject(std::string_view bytes);
std::string EncodePendingPut(const PendingPut& record);
absl::StatusOr<PendingPut> DecodePendingPut(std::string_view bytes);
std::string EncodeNode(const NodeRecord& record);
absl::StatusOr<NodeRecord> DecodeNode(std::string_view bytes);
std::string EncodePin(const PinRecord& record);
absl::StatusOr<PinRecord> DecodePin(std::string_view bytes);
std::string EncodeHeldExtent(const HeldExtent& record);
absl::StatusOr<HeldExtent> DecodeHeldExtent(std::string_view bytes);

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_RECORDS_H_
