#include "tensor_directory.h"

#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"

namespace unipool {
namespace {

absl::Status Unexpected(std::string_view what) {
  return absl::InternalError(
      absl::StrFormat("directory answered %s with an unexpected message", what));
}

template <typename WireRecord, typename Record>
absl::Status Convert(const flatbuffers::Vector<flatbuffers::Offset<WireRecord>>* in,
                     absl::StatusOr<Record> (*from_wire)(const WireRecord*),
                     std::vector<Record>& out) {
  if (in == nullptr) return absl::OkStatus();
  out.reserve(in->size());
  for (const WireRecord* w : *in) {
    ASSIGN_OR_RETURN(Record r, from_wire(w));
    out.push_back(std::move(r));
  }
  return absl::OkStatus();
}

}  // namespace

TensorDirectory::TensorDirectory(const ClientOptions& options, ClientSecurity security)
    : directory_(options.directory),
      pool_(ConnectionOptions{.peer_name = options.name,
                              .connect_timeout = options.connect_timeout,
                              .io_timeout = options.io_timeout,
                              .credential = std::move(security.credential),
                              .tls = std::move(security.tls)},
            options.max_idle_connections) {}

absl::StatusOr<ReceivedFrame> TensorDirectory::Call(const flatbuffers::FlatBufferBuilder& request) {
  auto reply = pool_.Call(directory_, request);
  if (!reply.ok() && absl::IsUnavailable(reply.status())) {
    return absl::UnavailableError(
        absl::StrFormat("directory %s: %s", directory_, reply.status().message()));
  }
  return reply;
}

absl::Status TensorDirectory::CallForStatus(const flatbuffers::FlatBufferBuilder& request,
                                            std::string_view what) {
  ASSIGN_OR_RETURN(ReceivedFrame reply, Call(request));
  const wire::StatusList* list = reply.message()->body_as_StatusList();
  if (list == nullptr || list->items() == nullptr || list->items()->size() != 1) {
    return Unexpected(what);
  }
  return StatusFromWire(list->items()->Get(0));
}

absl::Status TensorDirectory::Publish(std::span<const TensorRecord> tensors,
                                      const ModelRecord* model) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::TensorRecord>> offsets;
  for (const TensorRecord& t : tensors) offsets.push_back(BuildTensorRecord(fbb, t));
  auto vec = fbb.CreateVector(offsets);
  auto m = model ? BuildModelRecord(fbb, *model) : 0;
  FinishMessage(fbb, wire::CreateTensorPublish(fbb, vec, m));
  return CallForStatus(fbb, "TensorPublish");
}

absl::StatusOr<TensorDirectory::Found> TensorDirectory::Lookup(std::string_view name, bool model) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  FinishMessage(fbb, wire::CreateTensorLookup(fbb, n, model));
  ASSIGN_OR_RETURN(ReceivedFrame reply, Call(fbb));
  const wire::TensorLookupReply* r = reply.message()->body_as_TensorLookupReply();
  if (r == nullptr) return Unexpected("TensorLookup");
  RETURN_IF_ERROR(StatusFromWire(r->status()));
  Found found;
  RETURN_IF_ERROR(Convert(r->tensors(), &TensorRecordFromWire, found.tensors));
  if (model) {
    ASSIGN_OR_RETURN(found.model, ModelRecordFromWire(r->model()));
    return found;
  }
  if (found.tensors.size() != 1 || r->stripes() == nullptr ||
      r->stripes()->size() != found.tensors[0].layout().stripes()) {
    return Unexpected("TensorLookup");
  }
  for (const wire::StripeCopies* s : *r->stripes()) {
    TensorStripe stripe{.checksum = s->checksum()};
    if (s->node_ids()) stripe.node_ids.assign(s->node_ids()->begin(), s->node_ids()->end());
    if (s->nodes_up()) stripe.nodes_up.assign(s->nodes_up()->begin(), s->nodes_up()->end());
    found.stripes.push_back(std::move(stripe));
  }
  return found;
}

absl::StatusOr<std::vector<TensorRecord>> TensorDirectory::ListTensors(std::string_view prefix) {
  flatbuffers::FlatBufferBuilder fbb;
  auto p = fbb.CreateString(prefix);
  FinishMessage(fbb, wire::CreateTensorList(fbb, p, false));
  ASSIGN_OR_RETURN(ReceivedFrame reply, Call(fbb));
  const wire::TensorListReply* r = reply.message()->body_as_TensorListReply();
  if (r == nullptr) return Unexpected("TensorList");
  std::vector<TensorRecord> tensors;
  RETURN_IF_ERROR(Convert(r->tensors(), &TensorRecordFromWire, tensors));
  return tensors;
}

absl::StatusOr<std::vector<ModelRecord>> TensorDirectory::ListModels(std::string_view prefix) {
  flatbuffers::FlatBufferBuilder fbb;
  auto p = fbb.CreateString(prefix);
  FinishMessage(fbb, wire::CreateTensorList(fbb, p, true));
  ASSIGN_OR_RETURN(ReceivedFrame reply, Call(fbb));
  const wire::TensorListReply* r = reply.message()->body_as_TensorListReply();
  if (r == nullptr) return Unexpected("TensorList");
  std::vector<ModelRecord> models;
  RETURN_IF_ERROR(Convert(r->models(), &ModelRecordFromWire, models));
  return models;
}

absl::Status TensorDirectory::Remove(std::string_view name, bool model) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  FinishMessage(fbb, wire::CreateTensorRemove(fbb, n, model));
  return CallForStatus(fbb, "TensorRemove");
}

absl::Status TensorDirectory::Pin(std::string_view name, bool unpin) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  FinishMessage(fbb, wire::CreateModelPin(fbb, n, unpin));
  return CallForStatus(fbb, "ModelPin");
}

}  // namespace unipool
