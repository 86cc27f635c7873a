// The one codec between the pool types (unipool/pool_types.h) and their
// FlatBuffers messages (schema/unipool.fbs): the directory encodes, the SDK
// decodes, so a field added to a struct is added here once.
//
// Decoders take verified messages (the frame layer verifies every frame);
// absent fields decode as zero or empty.
//
// Thread safety: pure functions.
#ifndef UNIPOOL_COMMON_POOL_CODEC_H_
#define UNIPOOL_COMMON_POOL_CODEC_H_

#include <cstdint>

#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"
#include "unipool/pool_types.h"

namespace unipool {

flatbuffers::Offset<wire::StatusReply> EncodePoolState(flatbuffers::FlatBufferBuilder& fbb,
                                                       const PoolState& state);
PoolState DecodePoolState(const wire::StatusReply& reply);

// A node's flash store counters (heartbeats and status); 0 for none, and
// decoding nullptr gives all zeros.
flatbuffers::Offset<wire::FlashCounts> EncodeFlashCounts(flatbuffers::FlatBufferBuilder& fbb,
                                                         const FlashStoreCounts& c);
FlashStoreCounts DecodeFlashCounts(const wire::FlashCounts* c);

flatbuffers::Offset<wire::ListReply> EncodeListResult(flatbuffers::FlatBufferBuilder& fbb,
                                                      const ListResult& list);
ListResult DecodeListResult(const wire::ListReply& reply);

flatbuffers::Offset<wire::MetricsReply> EncodePoolMetrics(flatbuffers::FlatBufferBuilder& fbb,
                                                          const PoolMetrics& metrics);
PoolMetrics DecodePoolMetrics(const wire::MetricsReply& reply);

// An object's copies travel as the first copy's Placement plus the further
// copies' Placements (the wire's shape); in memory they are one vector.
struct WireCopies {
  flatbuffers::Offset<wire::Placement> first;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::Placement>>> further;
};
// REQUIRES: !info.copies.empty().
WireCopies EncodeObjectInfo(flatbuffers::FlatBufferBuilder& fbb, const ObjectInfo& info);
// `lease_ms` is the reply's lease (0 for none). Length, version and checksum
// are the first copy's; a missing first copy decodes as no copies.
ObjectInfo DecodeObjectInfo(
    const wire::Placement* first,
    const flatbuffers::Vector<flatbuffers::Offset<wire::Placement>>* further, uint32_t lease_ms);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_POOL_CODEC_H_
