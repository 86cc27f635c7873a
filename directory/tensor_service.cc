// DirectoryService handlers for tensors and models (TensorCatalog).
#include "absl/strings/str_format.h"
#include "unipool/common/protocol.h"
#include "unipool/common/status_macros.h"
#include "unipool/directory/directory_service.h"

namespace unipool {
namespace {

absl::Status ReplyOneStatus(ServerConnection& conn, const absl::Status& result) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Status>> items = {StatusToWire(fbb, result)};
  auto vec = fbb.CreateVector(items);
  FinishMessage(fbb, wire::CreateStatusList(fbb, vec));
  return conn.Reply(fbb);
}

absl::Status ReplyLookupError(ServerConnection& conn, const absl::Status& error) {
  flatbuffers::FlatBufferBuilder fbb;
  auto status = StatusToWire(fbb, error);
  FinishMessage(fbb, wire::CreateTensorLookupReply(fbb, status));
  return conn.Reply(fbb);
}

template <typename Records, typename Build>
auto BuildAll(flatbuffers::FlatBufferBuilder& fbb, const Records& records, Build build) {
  std::vector<decltype(build(fbb, records.front()))> offsets;
  offsets.reserve(records.size());
  for (const auto& r : records) offsets.push_back(build(fbb, r));
  return fbb.CreateVector(offsets);
}

}  // namespace

absl::Status DirectoryService::HandleTensorPublish(ServerConnection& conn,
                                                   const wire::TensorPublish& request) {
  std::vector<TensorRecord> tensors;
  std::optional<ModelRecord> model;
  absl::Status decoded = absl::OkStatus();
  if (request.tensors() != nullptr) {
    for (const wire::TensorRecord* t : *request.tensors()) {
      absl::StatusOr<TensorRecord> record = TensorRecordFromWire(t);
      if (!record.ok()) {
        decoded = record.status();
        break;
      }
      tensors.push_back(std::move(*record));
    }
  }
  if (decoded.ok() && request.model() != nullptr) {
    absl::StatusOr<ModelRecord> record = ModelRecordFromWire(request.model());
    if (record.ok()) model = std::move(*record);
    decoded = record.status();
  }
  if (!decoded.ok()) return ReplyOneStatus(conn, decoded);
  return ReplyOneStatus(conn, tensors_->Publish(std::move(tensors), std::move(model)));
}

absl::Status DirectoryService::HandleTensorLookup(ServerConnection& conn,
                                                  const wire::TensorLookup& request) {
  std::string_view name = request.name() ? request.name()->string_view() : std::string_view();
  flatbuffers::FlatBufferBuilder fbb;
  if (request.model()) {
    absl::StatusOr<ModelLookupResult> found = tensors_->LookupModel(name);
    if (!found.ok()) return ReplyLookupError(conn, found.status());
    auto tensors = BuildAll(fbb, found->tensors, BuildTensorRecord);
    auto model = BuildModelRecord(fbb, found->model);
    FinishMessage(fbb, wire::CreateTensorLookupReply(fbb, 0, tensors, model));
    return conn.Reply(fbb);
  }
  absl::StatusOr<TensorLookupResult> found = tensors_->LookupTensor(name);
  if (!found.ok()) return ReplyLookupError(conn, found.status());
  std::vector<TensorRecord> one = {found->record};
  auto tensors = BuildAll(fbb, one, BuildTensorRecord);
  std::vector<flatbuffers::Offset<wire::StripeCopies>> stripes;
  stripes.reserve(found->stripes.size());
  for (const StripeCopiesInfo& s : found->stripes) {
    auto ids = fbb.CreateVector(s.node_ids);
    auto up = fbb.CreateVector(s.nodes_up);
    stripes.push_back(wire::CreateStripeCopies(fbb, s.checksum, ids, up));
  }
  auto stripe_vec = fbb.CreateVector(stripes);
  FinishMessage(fbb, wire::CreateTensorLookupReply(fbb, 0, tensors, 0, stripe_vec));
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleTensorList(ServerConnection& conn,
                                                const wire::TensorList& request) {
  std::string_view prefix = request.prefix() ? request.prefix()->string_view() : std::string_view();
  flatbuffers::FlatBufferBuilder fbb;
  if (request.models()) {
    std::vector<ModelRecord> models = tensors_->ListModels(prefix);
    auto vec = BuildAll(fbb, models, BuildModelRecord);
    FinishMessage(fbb, wire::CreateTensorListReply(fbb, 0, vec));
  } else {
    std::vector<TensorRecord> tensors = tensors_->ListTensors(prefix);
    auto vec = BuildAll(fbb, tensors, BuildTensorRecord);
    FinishMessage(fbb, wire::CreateTensorListReply(fbb, vec));
  }
  return conn.Reply(fbb);
}

absl::Status DirectoryService::HandleTensorRemove(ServerConnection& conn,
                                                  const wire::TensorRemove& request) {
  std::string_view name = request.name() ? request.name()->string_view() : std::string_view();
  return ReplyOneStatus(
      conn, request.model() ? tensors_->RemoveModel(name) : tensors_->RemoveTensor(name));
}

absl::Status DirectoryService::HandleModelPin(ServerConnection& conn,
                                              const wire::ModelPin& request) {
  std::string_view name = request.name() ? request.name()->string_view() : std::string_view();
  return ReplyOneStatus(conn, tensors_->PinModel(name, request.unpin()));
}

}  // namespace unipool
