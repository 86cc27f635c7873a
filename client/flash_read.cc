// Gets of pages a lookup found on a node's flash only (no memory could be
// reserved to read them back into): the node reads them from its flash and
// sends them (FlashRead). The caller checks each page's checksum, as after
// any read.
#include <vector>

#include "client_impl.h"
#include "unipool/common/protocol.h"

namespace unipool {

bool Client::Impl::ServedFromFlash(const ObjectInfo& info) {
  for (const CopyLocation& copy : info.copies) {
    if (copy.on_flash) return true;
  }
  return false;
}

absl::Status Client::Impl::ReadFromFlash(const std::string& address,
                                         std::span<const FlashReadOp> ops) {
  node_requests_.fetch_add(1, std::memory_order_relaxed);
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::FlashItem>> items;
  std::vector<const Capability*> capabilities;
  std::vector<std::span<uint8_t>> sinks;
  items.reserve(ops.size());
  for (const FlashReadOp& op : ops) {
    auto key = fbb.CreateVector(reinterpret_cast<const uint8_t*>(op.key.data()), op.key.size());
    items.push_back(
        wire::CreateFlashItem(fbb, key, op.version, /*offset=*/0, op.into.size(), op.checksum));
    capabilities.push_back(op.capability);
    sinks.push_back(op.into);
  }
  auto vec = fbb.CreateVector(items);
  auto caps = EncodeCapabilities(fbb, capabilities);
  FinishMessage(fbb, wire::CreateFlashRead(fbb, vec, caps));
  return pool_.Call(address, fbb, {}, sinks).status();
}

}  // namespace unipool
