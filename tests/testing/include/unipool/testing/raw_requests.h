// Requests built by hand on a raw Connection, as an attacker (or a client
// of another implementation) would send them: reads and writes of slab
// ranges with a capability of the test's choosing, and the two-phase put's
// steps with any client id.
#ifndef UNIPOOL_TESTING_RAW_REQUESTS_H_
#define UNIPOOL_TESTING_RAW_REQUESTS_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "unipool/common/connection.h"
#include "unipool/pool_types.h"

namespace unipool::testing {

// A request's capabilities field: `capability` alone, or none when null.
flatbuffers::Offset<flatbuffers::Vector<const wire::Capability*>> OneCapability(
    flatbuffers::FlatBufferBuilder& fbb, const Capability* capability);

// A node's Read of [offset, offset + into.size()) into `into`, with
// `capability` if given.
absl::Status RawRead(Connection& conn, uint64_t offset, std::span<uint8_t> into,
                     const Capability* capability);
// A node's Write of `bytes` at `offset`, with `capability` if given.
absl::Status RawWrite(Connection& conn, uint64_t offset, std::span<const uint8_t> bytes,
                      const Capability* capability);

// What PutStart answered for one key (its first copy).
struct RawReservation {
  uint64_t put_id = 0;
  uint64_t version = 0;  // the placement's
  std::string node_address;
  uint64_t offset = 0;
  Capability capability;  // to write there (a pool with a key)
};

// A directory's PutStart of `keys`, `length` bytes each, as client id
// `client`; fails with the first item's error.
absl::StatusOr<std::vector<RawReservation>> RawPutStart(Connection& conn,
                                                        const std::vector<std::string>& keys,
                                                        uint64_t length, uint64_t client);
// A directory's PutCommit of `put_ids` (each with `checksum`) as client
// `client`; one status per id, or the call's error alone.
std::vector<absl::Status> RawPutCommit(Connection& conn, const std::vector<uint64_t>& put_ids,
                                       uint64_t checksum, uint64_t client);
// A directory's PutAbort of `put_ids` as client `client`.
absl::Status RawPutAbort(Connection& conn, const std::vector<uint64_t>& put_ids, uint64_t client);

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_RAW_REQUESTS_H_
