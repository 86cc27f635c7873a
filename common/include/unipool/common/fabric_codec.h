// Clients' fabric reports (ClientFabric, unipool/pool_types.h) on the wire.
// The directory decodes what clients send, so every count and string is
// bounded here.
//
// Thread safety: pure functions.
#ifndef UNIPOOL_COMMON_FABRIC_CODEC_H_
#define UNIPOOL_COMMON_FABRIC_CODEC_H_

#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "schema/unipool_generated.h"
#include "unipool/pool_types.h"

namespace unipool {

inline constexpr size_t kMaxFabricEntries = 256;    // paths, and fallbacks, per report
inline constexpr size_t kMaxFabricTextBytes = 512;  // any one string in it

flatbuffers::Offset<wire::FabricReport> EncodeFabricReport(flatbuffers::FlatBufferBuilder& fbb,
                                                           const ClientFabric& fabric);
// InvalidArgument when a list or a string is over its bound.
absl::StatusOr<ClientFabric> DecodeFabricReport(const wire::FabricReport* report);

}  // namespace unipool

#endif  // UNIPOOL_COMMON_FABRIC_CODEC_H_
