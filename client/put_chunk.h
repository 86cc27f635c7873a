// One chunk of a BatchPut as it goes through its steps (put_path.cc reserves
// and writes, put_commit.cc commits or aborts). Private to the SDK.
//
// Thread safety: a chunk belongs to the BatchPut call working on it; only
// WriteCopies' node requests run side by side, each on its own CopyWrites.
#ifndef UNIPOOL_CLIENT_PUT_CHUNK_H_
#define UNIPOOL_CLIENT_PUT_CHUNK_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client_impl.h"
#include "reservation_stock.h"
#include "unipool/client.h"
#include "unipool/pool_types.h"

namespace unipool {

struct Client::Impl::PutChunk {
  // An item the directory reserved space for.
  struct Reserved {
    size_t item = 0;                   // index into keys, values and results
    uint64_t put_id = 0;               // random: what the commit names
    uint64_t version = 0;              // the object's once committed
    uint64_t checksum = 0;             // known once a copy is written (or before)
    std::vector<CopyLocation> copies;  // where to write
    std::vector<NodeId> failed_nodes;  // copies whose write failed
    bool prehanded = false;            // from the stock: the commit names the key
    bool hashed = false;               // checksum is set
    bool changed = false;              // copies hashed differently: the caller's bytes changed
  };
  std::span<const std::string_view> keys;
  std::span<const std::span<const uint8_t>> values;
  std::vector<absl::Status>& results;
  const PutOptions& options;
  std::vector<Reserved> reserved;  // stock ones first, then PutStart's
  // Per key index: the copies to ask for, and how many were written by an
  // attempt that was aborted to place the item again. When too few nodes
  // are left to place it again whole, it is placed with that many copies
  // (what the first attempt could have committed).
  std::vector<int> replicas;
  std::vector<int> written_before;
  std::vector<size_t> fewer;  // items Reserve asks to try with fewer copies
  // Items the pool has no room for yet, and the directory's shortest hint
  // of when to ask again (pool_full_wait.h).
  std::vector<size_t> waiting;
  absl::Duration wait_hint = absl::InfiniteDuration();
  // Items of each shape in the chunk: what to ask the stock to be refilled with.
  absl::flat_hash_map<PutShape, uint32_t> shapes;
};

// One copy of a reserved item to write, and how its write went.
struct Client::Impl::CopyWrite {
  PutChunk::Reserved* put;
  const CopyLocation* copy;
  uint64_t hash = 0;  // of the bytes written, when the transport hashed them
  absl::Status status;
};

// Writes of several copies to one node, in one request.
struct Client::Impl::NodeWrite {
  std::string address;
  std::vector<size_t> writes;  // indexes into the CopyWrites
};

}  // namespace unipool

#endif  // UNIPOOL_CLIENT_PUT_CHUNK_H_
