// The Admin calls (unipool/admin.h): directory requests for tools.
#include "unipool/admin.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "batching.h"
#include "client_impl.h"
#include "unipool/common/pool_codec.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(flatbuffers::FlatBufferBuilder& fbb,
                                                        std::string_view s) {
  return fbb.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Drain is polled until the node is empty. A drain that stays blocked (no
// room elsewhere, objects with no live copy) without progress for
// kDrainBlockedFor is reported; the node stays draining until Undrain.
constexpr absl::Duration kDrainPoll = absl::Milliseconds(100);
constexpr absl::Duration kDrainBlockedFor = absl::Seconds(3);

}  // namespace

absl::Status Client::Impl::PinRequest(std::string_view key, bool prefix, bool unpin) {
  RETURN_IF_ERROR(ValidateKey(key));
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreatePin(fbb, Bytes(fbb, key), prefix, unpin));
  ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
  const wire::StatusList* r = reply.message()->body_as_StatusList();
  if (r == nullptr || r->items() == nullptr || r->items()->size() != 1) {
    return UnexpectedReply(unpin ? "Unpin" : "Pin");
  }
  return StatusFromWire(r->items()->Get(0));
}

absl::StatusOr<const wire::DrainReply*> Client::Impl::DrainOnce(std::string_view node, bool undrain,
                                                                ReceivedFrame& reply) {
  flatbuffers::FlatBufferBuilder fbb;
  auto name = fbb.CreateString(node.data(), node.size());
  FinishMessage(fbb, wire::CreateDrain(fbb, name, undrain));
  ASSIGN_OR_RETURN(reply, CallDirectory(fbb));
  const wire::DrainReply* r = reply.message()->body_as_DrainReply();
  if (r == nullptr) return UnexpectedReply(undrain ? "Undrain" : "Drain");
  return r;
}

absl::Status Client::Impl::DrainRequest(std::string_view node, bool undrain) {
  if (node.empty()) return absl::InvalidArgumentError("drain: no node named");
  uint64_t last_used = UINT64_MAX;
  absl::Time progressed = absl::Now();
  while (true) {
    ReceivedFrame frame;
    ASSIGN_OR_RETURN(const wire::DrainReply* r, DrainOnce(node, undrain, frame));
    absl::Status blocked = StatusFromWire(r->status());
    if (absl::IsNotFound(blocked) && r->name() == nullptr) return blocked;  // no such node
    if (undrain || r->done()) return absl::OkStatus();
    absl::Time now = absl::Now();
    if (r->used() < last_used || r->moves_in_flight() > 0) {
      last_used = r->used();
      progressed = now;
    }
    if (!blocked.ok() && now - progressed > kDrainBlockedFor) {
      return absl::Status(
          blocked.code(),
          absl::StrFormat("%s (%u objects, %u bytes still on %s; it stays "
                          "draining until undrained)",
                          blocked.message(), r->objects(), r->used(), AsStringView(r->name())));
    }
    absl::SleepFor(kDrainPoll);
  }
}

absl::StatusOr<PoolState> Client::Impl::FetchPoolState() {
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateGetStatus(fbb));
  ASSIGN_OR_RETURN(ReceivedFrame reply, CallDirectory(fbb));
  const wire::StatusReply* r = reply.message()->body_as_StatusReply();
  if (r == nullptr) return UnexpectedReply("GetStatus");
  return DecodePoolState(*r);
}

absl::StatusOr<std::unique_ptr<Admin>> Admin::Connect(const ClientOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(options));
  auto admin = std::make_unique<Admin>(*client);
  admin->owned_ = std::move(client);
  return admin;
}

Admin::Admin(Client& client) : impl_(client.impl_.get()) {}
Admin::~Admin() = default;

absl::StatusOr<ObjectInfo> Admin::Stat(std::string_view key) {
  return std::move(impl_->LookupMany({&key, 1})[0]);
}

absl::Status Admin::Pin(std::string_view key_or_prefix, bool prefix) {
  return impl_->PinRequest(key_or_prefix, prefix, /*unpin=*/false);
}

absl::Status Admin::Unpin(std::string_view key_or_prefix, bool prefix) {
  return impl_->PinRequest(key_or_prefix, prefix, /*unpin=*/true);
}

absl::StatusOr<uint64_t> Admin::Evict(std::string_view prefix) {
  return Evict(prefix, EvictTier::kMemory);
}

absl::StatusOr<uint64_t> Admin::Evict(std::string_view prefix, EvictTier tier) {
  if (prefix.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError("evict prefix longer than a key can be");
  }
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb,
                wire::CreateEvict(fbb, Bytes(fbb, prefix), static_cast<wire::EvictTier>(tier)));
  ASSIGN_OR_RETURN(ReceivedFrame reply, impl_->CallDirectory(fbb));
  const wire::EvictReply* r = reply.message()->body_as_EvictReply();
  if (r == nullptr) return UnexpectedReply("Evict");
  return r->evicted();
}

absl::Status Admin::Drain(std::string_view node) {
  return impl_->DrainRequest(node, /*undrain=*/false);
}

absl::Status Admin::Undrain(std::string_view node) {
  return impl_->DrainRequest(node, /*undrain=*/true);
}

absl::StatusOr<PoolState> Admin::State() { return impl_->FetchPoolState(); }

absl::Status Admin::StepDown() {
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb, wire::CreateStepDown(fbb));
  ASSIGN_OR_RETURN(ReceivedFrame reply, impl_->CallDirectory(fbb));
  if (reply.message()->body_as_Ack() == nullptr) return UnexpectedReply("StepDown");
  return absl::OkStatus();
}

absl::StatusOr<ListResult> Admin::List(std::string_view prefix, size_t limit,
                                       std::string_view start_after) {
  if (limit == 0 || limit > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrFormat("list limit %u is not in 1..%u", limit, kMaxBatchItems));
  }
  if (prefix.size() > kMaxKeyBytes || start_after.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError("list prefix or start key longer than a key can be");
  }
  flatbuffers::FlatBufferBuilder fbb;
  auto p = Bytes(fbb, prefix);
  auto after = Bytes(fbb, start_after);
  FinishMessage(fbb, wire::CreateList(fbb, p, after, static_cast<uint32_t>(limit)));
  ASSIGN_OR_RETURN(ReceivedFrame reply, impl_->CallDirectory(fbb));
  const wire::ListReply* r = reply.message()->body_as_ListReply();
  if (r == nullptr) return UnexpectedReply("List");
  return DecodeListResult(*r);
}

absl::StatusOr<PoolMetrics> Admin::Metrics(int history_seconds) {
  flatbuffers::FlatBufferBuilder fbb;
  FinishMessage(fbb,
                wire::CreateGetMetrics(fbb, static_cast<uint32_t>(std::max(0, history_seconds))));
  ASSIGN_OR_RETURN(ReceivedFrame reply, impl_->CallDirectory(fbb));
  const wire::MetricsReply* r = reply.message()->body_as_MetricsReply();
  if (r == nullptr) return UnexpectedReply("GetMetrics");
  return DecodePoolMetrics(*r);
}

}  // namespace unipool
