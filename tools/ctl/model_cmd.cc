// unipoolctl model load | ls | info | export | rm | pin | unpin: models
// (named sets of tensors from safetensors files) in the pool.
#include <cstdio>
#include <map>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "output.h"
#include "unipool/common/units.h"
#include "unipool/tensor.h"

ABSL_DECLARE_FLAG(int, replicas);
ABSL_FLAG(std::string, name, "", "model load: the model's name in the pool");
ABSL_FLAG(std::string, stripe_size, "64MiB",
          "model load: bytes per stripe (4KiB..1GiB); a tensor spreads over nodes in stripes");
ABSL_FLAG(bool, pin, false, "model load: pin the model (never evicted)");

namespace unipool::ctl {
namespace {

constexpr char kUsage[] =
    "model load PATH --name NAME [--replicas N] [--stripe-size SIZE] [--pin] | model ls [PREFIX] "
    "| model info NAME | model export NAME DIR | model rm NAME | model pin NAME | model unpin NAME";

std::string Shape(const std::vector<uint64_t>& shape) {
  return "[" + absl::StrJoin(shape, ", ") + "]";
}

std::string Rate(uint64_t bytes, absl::Duration took) {
  double seconds = std::max(1e-6, absl::ToDoubleSeconds(took));
  return absl::StrFormat("%s in %.2f s, %.2f GB/s", FormatSize(bytes), seconds,
                         bytes / seconds / 1e9);
}

int Load(Context& ctx, TensorClient& tensors) {
  std::string name = absl::GetFlag(FLAGS_name);
  if (ctx.args().size() != 2 || name.empty()) return UsageError(kUsage);
  absl::StatusOr<uint64_t> stripe = ParseSize(absl::GetFlag(FLAGS_stripe_size));
  if (!stripe.ok()) return Fail(absl::StrFormat("--stripe-size: %s", stripe.status().message()));
  ModelLoadOptions options;
  options.stripe_size = *stripe;
  options.replicas = absl::GetFlag(FLAGS_replicas);
  options.pin = absl::GetFlag(FLAGS_pin);
  const std::string& path = ctx.args()[1];
  Progress progress(absl::StrFormat("load %s", name), 0, /*bytes=*/true);
  options.progress = [&](const LoadProgress& p) {
    progress.SetTotal(p.bytes_total);
    progress.Set(p.bytes_done);
  };
  absl::Time start = absl::Now();
  absl::Status loaded = tensors.LoadModel(path, name, options);
  progress.Finish();
  if (!loaded.ok()) return Fail(loaded);
  absl::StatusOr<ModelInfo> info = tensors.GetModelInfo(name);
  if (!info.ok()) return Fail(info.status());
  std::fprintf(stderr, "loaded model %s: %d tensors, %s\n", name.c_str(),
               static_cast<int>(info->tensor_count),
               Rate(info->bytes, absl::Now() - start).c_str());
  return kExitOk;
}

int List(Context& ctx, TensorClient& tensors) {
  if (ctx.args().size() > 2) return UsageError(kUsage);
  auto models = tensors.ListModels(ctx.args().size() == 2 ? ctx.args()[1] : "");
  if (!models.ok()) return Fail(models.status());
  absl::Time now = absl::Now();
  nlohmann::ordered_json json = nlohmann::ordered_json::array();
  Table table;
  for (auto [header, right] : {std::pair{"NAME", false},
                               {"TENSORS", true},
                               {"SIZE", true},
                               {"PINNED", false},
                               {"AGE", true},
                               {"FILES", true}}) {
    table.Column(header, right);
  }
  for (const ModelInfo& m : *models) {
    json.push_back({{"name", m.name},
                    {"tensors", m.tensor_count},
                    {"bytes", m.bytes},
                    {"pinned", m.pinned},
                    {"created_unix_ms", m.created_unix_ms},
                    {"files", m.files}});
    table.Row({DisplayKey(m.name), std::to_string(m.tensor_count), FormatSize(m.bytes),
               m.pinned ? "yes" : "no", FormatAge(now - absl::FromUnixMillis(m.created_unix_ms)),
               std::to_string(m.files.size())});
  }
  if (ctx.json()) {
    PrintJson(json);
  } else if (!table.empty()) {
    table.Print();
  }
  return kExitOk;
}

// Names of the nodes holding a tensor's stripes (first copies and replicas).
std::string NodesOf(const TensorInfo& tensor, const std::map<uint32_t, std::string>& names) {
  std::map<std::string, int> count;
  for (const TensorStripe& s : tensor.stripes) {
    for (uint32_t id : s.node_ids) {
      auto it = names.find(id);
      ++count[it == names.end() ? absl::StrFormat("node%d", id) : it->second];
    }
  }
  std::vector<std::string> parts;
  for (const auto& [name, n] : count) parts.push_back(absl::StrFormat("%s(%d)", name, n));
  return absl::StrJoin(parts, " ");
}

int Info(Context& ctx, TensorClient& tensors) {
  if (ctx.args().size() != 2) return UsageError(kUsage);
  const std::string& name = ctx.args()[1];
  absl::StatusOr<ModelInfo> model = tensors.GetModelInfo(name);
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::StatusOr<PoolState> pool = (*admin)->State();
  if (!pool.ok()) return Fail(pool.status());
  std::map<uint32_t, std::string> node_names;
  for (const NodeState& n : pool->nodes) node_names[n.node_id] = n.name;
  nlohmann::ordered_json json_tensors = nlohmann::ordered_json::array();
  Table table;
  for (auto [header, right] : {std::pair{"TENSOR", false},
                               {"DTYPE", false},
                               {"SHAPE", false},
                               {"SIZE", true},
                               {"STRIPES", true},
                               {"NODES", false}}) {
    table.Column(header, right);
  }
  for (const TensorInfo& t : model->tensors) {
    absl::StatusOr<TensorInfo> full = tensors.GetTensorInfo(name + "/" + t.name);
    if (!full.ok()) return Fail(full.status());
    std::string nodes = NodesOf(*full, node_names);
    json_tensors.push_back({{"name", t.name},
                            {"dtype", t.dtype},
                            {"shape", t.shape},
                            {"bytes", t.length},
                            {"stripes", full->stripes.size()},
                            {"nodes", nodes}});
    table.Row({DisplayKey(t.name), t.dtype, Shape(t.shape), FormatSize(t.length),
               std::to_string(full->stripes.size()), nodes});
  }
  if (ctx.json()) {
    PrintJson({{"name", model->name},
               {"bytes", model->bytes},
               {"pinned", model->pinned},
               {"files", model->files},
               {"metadata", model->metadata},
               {"tensors", json_tensors}});
    return kExitOk;
  }
  std::printf("model %s: %d tensors, %s, %s, files: %s\n", DisplayKey(model->name).c_str(),
              static_cast<int>(model->tensor_count), FormatSize(model->bytes).c_str(),
              model->pinned ? "pinned" : "not pinned", absl::StrJoin(model->files, ", ").c_str());
  for (const auto& [key, value] : model->metadata) {
    std::printf("  %s: %s\n", OneLine(key).c_str(), OneLine(value).c_str());
  }
  table.Print();
  return kExitOk;
}

int Export(Context& ctx, TensorClient& tensors) {
  if (ctx.args().size() != 3) return UsageError(kUsage);
  const std::string& name = ctx.args()[1];
  absl::StatusOr<ModelInfo> model = tensors.GetModelInfo(name);
  if (!model.ok()) return Fail(model.status());
  absl::Time start = absl::Now();
  {
    Progress progress(absl::StrFormat("export %s", name), 0, /*bytes=*/true);
    if (absl::Status s = tensors.ExportModel(name, ctx.args()[2]); !s.ok()) return Fail(s);
  }
  std::fprintf(stderr, "exported model %s to %s: %s\n", name.c_str(), ctx.args()[2].c_str(),
               Rate(model->bytes, absl::Now() - start).c_str());
  return kExitOk;
}

}  // namespace

int ModelCommand(Context& ctx) {
  if (ctx.args().empty()) return UsageError(kUsage);
  absl::StatusOr<TensorClient*> tensors = ctx.tensors();
  if (!tensors.ok()) return Fail(tensors.status());
  const std::string& verb = ctx.args()[0];
  if (verb == "load") return Load(ctx, **tensors);
  if (verb == "ls") return List(ctx, **tensors);
  if (verb == "info") return Info(ctx, **tensors);
  if (verb == "export") return Export(ctx, **tensors);
  if (ctx.args().size() != 2) return UsageError(kUsage);
  const std::string& name = ctx.args()[1];
  absl::Status done;
  if (verb == "rm") {
    done = (*tensors)->RemoveModel(name);
  } else if (verb == "pin" || verb == "unpin") {
    done = (*tensors)->PinModel(name, /*unpin=*/verb == "unpin");
  } else {
    return UsageError(kUsage);
  }
  if (!done.ok()) return Fail(done);
  std::fprintf(stderr, "%s model %s\n",
               verb == "rm"    ? "removed"
               : verb == "pin" ? "pinned"
                               : "unpinned",
               name.c_str());
  return kExitOk;
}

}  // namespace unipool::ctl
