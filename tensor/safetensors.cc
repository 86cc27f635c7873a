// Parsing and building safetensors headers. Everything in a header is
// checked before it is used: a reader trusts only what this file accepts.
#include "unipool/tensor/safetensors.h"

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "unipool/common/status_macros.h"
#include "unipool/tensor/dtype.h"

namespace unipool {
namespace {

using Json = nlohmann::json;

absl::Status Bad(std::string_view file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", file, what));
}

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parses JSON whose top-level keys must be unique (nlohmann keeps the last
// of duplicates silently; a duplicate tensor name would hide a tensor).
absl::StatusOr<Json> ParseUniqueKeys(std::string_view text, std::string_view file) {
  std::string duplicate;
  absl::flat_hash_set<std::string> seen;
  Json::parser_callback_t check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  Json json = Json::parse(text.begin(), text.end(), check, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Bad(file, "header is not valid JSON");
  if (!duplicate.empty()) return Bad(file, absl::StrFormat("tensor '%s' appears twice", duplicate));
  if (!json.is_object()) return Bad(file, "header is not a JSON object");
  return json;
}

absl::StatusOr<uint64_t> ToU64(const Json& value) {
  if (!value.is_number_unsigned()) return absl::InvalidArgumentError("not a non-negative integer");
  return value.get<uint64_t>();
}

absl::StatusOr<SafetensorsTensor> ParseEntry(const std::string& name, const Json& entry,
                                             std::string_view file) {
  auto bad = [&](const std::string& what) {
    return Bad(file, absl::StrFormat("tensor '%s': %s", name, what));
  };
  if (name.empty()) return Bad(file, "a tensor has an empty name");
  if (!entry.is_object()) return bad("entry is not an object");
  auto dtype = entry.find("dtype");
  auto shape = entry.find("shape");
  auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || !dtype->is_string()) return bad("missing dtype");
  if (shape == entry.end() || !shape->is_array()) return bad("missing shape");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    return bad("data_offsets is not [begin, end]");
  }
  SafetensorsTensor tensor;
  tensor.name = name;
  tensor.dtype = dtype->get<std::string>();
  if (!DTypeSize(tensor.dtype)) return bad(absl::StrFormat("unknown dtype '%s'", tensor.dtype));
  for (const Json& dim : *shape) {
    absl::StatusOr<uint64_t> d = ToU64(dim);
    if (!d.ok()) return bad("shape has a dimension that is not a non-negative integer");
    tensor.shape.push_back(*d);
  }
  absl::StatusOr<uint64_t> begin = ToU64((*offsets)[0]);
  absl::StatusOr<uint64_t> end = ToU64((*offsets)[1]);
  if (!begin.ok() || !end.ok()) return bad("data_offsets are not non-negative integers");
  if (*end < *begin)
    return bad(absl::StrFormat("data_offsets [%d, %d] end before they begin", *begin, *end));
  tensor.begin = *begin;
  tensor.end = *end;
  absl::StatusOr<uint64_t> bytes = TensorBytes(tensor.dtype, tensor.shape);
  if (!bytes.ok()) return bad(std::string(bytes.status().message()));
  if (*bytes != tensor.bytes()) {
    return bad(absl::StrFormat("dtype %s and shape need %d bytes but data_offsets hold %d",
                               tensor.dtype, *bytes, tensor.bytes()));
  }
  return tensor;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const Json& value,
                                                                 std::string_view file) {
  if (!value.is_object()) return Bad(file, "__metadata__ is not an object");
  std::map<std::string, std::string> metadata;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it.value().is_string()) {
      return Bad(file, absl::StrFormat("__metadata__ '%s' is not a string", it.key()));
    }
    metadata[it.key()] = it.value().get<std::string>();
  }
  return metadata;
}

// Tensors sorted by offset must tile [0, data_bytes) exactly.
absl::Status CheckContiguous(std::vector<SafetensorsTensor>& tensors, uint64_t data_bytes,
                             std::string_view file) {
  std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const SafetensorsTensor& t : tensors) {
    if (t.end > data_bytes) {
      return Bad(file, absl::StrFormat("tensor '%s': data_offsets [%d, %d] out of range: the file "
                                       "holds %d bytes of data",
                                       t.name, t.begin, t.end, data_bytes));
    }
    if (t.begin < at) {
      return Bad(file, absl::StrFormat("tensor '%s': data [%d, %d] overlaps the previous tensor "
                                       "(which ends at %d)",
                                       t.name, t.begin, t.end, at));
    }
    if (t.begin > at) {
      return Bad(file, absl::StrFormat("tensor '%s': gap of %d bytes before its data at %d", t.name,
                                       t.begin - at, t.begin));
    }
    at = t.end;
  }
  if (at != data_bytes) {
    return Bad(file, absl::StrFormat("%d bytes after the last tensor's data belong to no tensor",
                                     data_bytes - at));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::span<const uint8_t> raw,
                                                         uint64_t file_size,
                                                         std::string_view file) {
  if (file_size < 8 || raw.size() < 8) return Bad(file, "shorter than the 8-byte header length");
  uint64_t n = LoadLe64(raw.data());
  if (n > file_size - 8) {
    return Bad(file, absl::StrFormat("header of %d bytes is longer than the file (%d bytes)", n,
                                     file_size));
  }
  if (n > kMaxSafetensorsHeaderBytes) {
    return Bad(file, absl::StrFormat("header of %d bytes is over the %d-byte limit", n,
                                     kMaxSafetensorsHeaderBytes));
  }
  if (raw.size() < 8 + n) return Bad(file, "header bytes are missing");
  std::string_view text(reinterpret_cast<const char*>(raw.data()) + 8, n);
  ASSIGN_OR_RETURN(Json json, ParseUniqueKeys(text, file));
  SafetensorsHeader header;
  header.raw.assign(reinterpret_cast<const char*>(raw.data()), 8 + n);
  header.data_offset = 8 + n;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == "__metadata__") {
      ASSIGN_OR_RETURN(header.metadata, ParseMetadata(it.value(), file));
      continue;
    }
    ASSIGN_OR_RETURN(SafetensorsTensor tensor, ParseEntry(it.key(), it.value(), file));
    header.tensors.push_back(std::move(tensor));
  }
  RETURN_IF_ERROR(CheckContiguous(header.tensors, file_size - header.data_offset, file));
  return header;
}

absl::StatusOr<SafetensorsHeader> BuildSafetensorsHeader(
    std::vector<SafetensorsTensor> tensors, const std::map<std::string, std::string>& metadata) {
  // nlohmann's ordered_json keeps insertion order, so the JSON lists the
  // tensors in data order like the reference writer's output.
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  if (!metadata.empty()) json["__metadata__"] = metadata;
  absl::flat_hash_set<std::string> names;
  uint64_t at = 0;
  for (SafetensorsTensor& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || !names.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tensor name '%s' is empty, reserved or "
                          "repeated",
                          t.name));
    }
    ASSIGN_OR_RETURN(uint64_t bytes, TensorBytes(t.dtype, t.shape));
    t.begin = at;
    t.end = at += bytes;
    json[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string text = json.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  SafetensorsHeader header;
  header.raw.resize(8);
  for (int i = 0; i < 8; ++i) header.raw[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  header.raw += text;
  header.data_offset = header.raw.size();
  header.tensors = std::move(tensors);
  header.metadata = metadata;
  return header;
}

absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(std::string_view text) {
  constexpr std::string_view kFile = kSafetensorsIndexName;
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return Bad(kFile, "not a JSON object");
  auto map = json.find("weight_map");
  if (map == json.end() || !map->is_object()) return Bad(kFile, "no weight_map object");
  SafetensorsIndex index;
  index.raw = std::string(text);
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) {
      return Bad(kFile, absl::StrFormat("tensor '%s': file name is not a string", it.key()));
    }
    std::string name = it.value().get<std::string>();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos) {
      return Bad(kFile,
                 absl::StrFormat("tensor '%s': file '%s' is not a file in the model's folder",
                                 it.key(), name));
    }
    index.weight_map[it.key()] = name;
    index.files.push_back(name);
  }
  std::sort(index.files.begin(), index.files.end());
  index.files.erase(std::unique(index.files.begin(), index.files.end()), index.files.end());
  if (index.files.empty()) return Bad(kFile, "weight_map is empty");
  return index;
}

uint64_t SafetensorsModel::data_bytes() const {
  uint64_t bytes = 0;
  for (const SafetensorsFile& f : files) bytes += f.header.data_bytes();
  return bytes;
}

size_t SafetensorsModel::tensor_count() const {
  size_t n = 0;
  for (const SafetensorsFile& f : files) n += f.header.tensors.size();
  return n;
}

}  // namespace unipool
