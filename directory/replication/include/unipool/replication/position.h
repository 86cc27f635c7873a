// Where a directory's catalog is in the replicated history: the leader term
// and the sequence number, within that term, of the last write applied.
// Every replicated write carries the position it brings the catalog to, in
// the same RocksDB write (the key kPositionKey), so a catalog and its
// position never disagree, across crashes too.
#ifndef UNIPOOL_REPLICATION_POSITION_H_
#define UNIPOOL_REPLICATION_POSITION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace unipool {

struct ReplicationPosition {
  int64_t term = 0;  // 0: nothing replicated (a new catalog, or a snapshot half copied)
  uint64_t seq = 0;
  bool operator==(const ReplicationPosition& o) const { return term == o.term && seq == o.seq; }
  bool operator!=(const ReplicationPosition& o) const { return !(*this == o); }
};

// The catalog key of the position ('m' keys are the catalog's metadata,
// schema/FORMATS.md); a snapshot never copies it.
inline constexpr std::string_view kPositionKey = "m:replicated";

// 16 bytes: term then seq, each little-endian.
std::string EncodePosition(ReplicationPosition position);
// Nothing when `value` is not 16 bytes.
std::optional<ReplicationPosition> DecodePosition(std::string_view value);

}  // namespace unipool

#endif  // UNIPOOL_REPLICATION_POSITION_H_
