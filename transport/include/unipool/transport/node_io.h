// How page bytes move between client memory and one node's slab. One
// implementation per transport (TCP frames, same-host shared memory, verbs
// RDMA); the client decides placement and checksums, a NodeIo only moves
// bytes.
//
// Thread safety: implementations are thread-safe.
#ifndef UNIPOOL_TRANSPORT_NODE_IO_H_
#define UNIPOOL_TRANSPORT_NODE_IO_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "unipool/common/capability.h"

namespace unipool {

struct WriteOp {
  uint64_t offset = 0;             // in the node's slab
  std::span<const uint8_t> bytes;  // what to store there
  uint64_t checksum = 0;           // XXH3-64 of bytes (lossy transports verify it)
  // Optional, only for a NodeIo whose HashesWhileWriting(): `checksum` is
  // not given, and the transport stores the bytes' XXH3-64 here, computed
  // while it copies them (one pass over the data, not a hash then a copy).
  uint64_t* hashed = nullptr;
  // The directory's write capability for this range (TCP sends it with the
  // Write, UC RDMA with the RdmaVerify; nodes of a pool with a key refuse
  // both without one; RC's one-sided writes carry none). Null: none.
  const Capability* capability = nullptr;
};

struct ReadOp {
  uint64_t offset = 0;      // in the node's slab
  std::span<uint8_t> into;  // exactly the object's length
  uint64_t checksum = 0;    // of the committed bytes (lossy transports retry on mismatch)
  // Optional: a transport that checked the bytes against `checksum` itself
  // (shm hashes as it copies; UC RDMA checks what arrived, to ask again for
  // what was lost) sets *verified when they match, so the caller need not
  // hash again.
  bool* verified = nullptr;
  // The directory's read capability for this range (TCP sends it with the
  // Read, UC RDMA with the RdmaReadTo; nodes of a pool with a key refuse both
  // without one; RC's one-sided reads carry none). Null: none.
  const Capability* capability = nullptr;
};

class NodeIo {
 public:
  virtual ~NodeIo() = default;
  // Stores every op's bytes, or fails (then any subset may have been written:
  // the caller aborts the reservations). Unavailable when the node cannot be
  // reached.
  virtual absl::Status Write(const std::string& node_address, std::span<const WriteOp> ops) = 0;
  // Fills every op's buffer from the slab, or fails.
  virtual absl::Status Read(const std::string& node_address, std::span<const ReadOp> ops) = 0;
  // "tcp", "rdma-rc", "rdma-uc": shown in stats.
  virtual std::string_view name() const = 0;
  // Whether Write takes ops without a checksum and fills their `hashed`
  // (transports that copy the bytes themselves: shm, tcp). Otherwise the
  // caller hashes before writing (a lossy transport verifies what it wrote).
  virtual bool HashesWhileWriting() const { return false; }
};

// For a NodeIo whose writes go to another that does not hash while writing:
// `ops` with every `hashed` one hashed now (stored in *hashed and in
// checksum) and `hashed` cleared.
std::vector<WriteOp> HashedFirst(std::span<const WriteOp> ops);

// The ops' capabilities as a request's field, one per op (none at all in a
// pool without a key).
template <typename Op>
flatbuffers::Offset<flatbuffers::Vector<const wire::Capability*>> OpCapabilities(
    flatbuffers::FlatBufferBuilder& fbb, std::span<const Op> ops) {
  std::vector<const Capability*> capabilities;
  capabilities.reserve(ops.size());
  for (const Op& op : ops) capabilities.push_back(op.capability);
  return EncodeCapabilities(fbb, capabilities);
}

}  // namespace unipool

#endif  // UNIPOOL_TRANSPORT_NODE_IO_H_
