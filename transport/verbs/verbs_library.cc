#include "unipool/verbs/verbs_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace unipool {
namespace {

std::vector<std::string> Candidates() {
  if (const char* path = std::getenv("UNIPOOL_VERBS_LIBRARY"); path != nullptr && *path) {
    return {path};
  }
#ifdef __APPLE__
  return {"librdma.dylib", "/usr/lib/librdma.dylib"};
#else
  return {"libibverbs.so.1", "libibverbs.so"};
#endif
}

absl::StatusOr<VerbsApi> Load() {
  void* handle = nullptr;
  std::string tried;
  for (const std::string& name : Candidates()) {
    handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    tried += (tried.empty() ? "" : ", ") + name;
  }
  if (handle == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("no verbs library (tried %s): %s", tried, dlerror()));
  }
  VerbsApi api{};
  std::string missing;
  auto resolve = [&](auto& slot, const char* symbol) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(handle, symbol));
    if (slot == nullptr) missing += (missing.empty() ? "" : ", ") + std::string(symbol);
  };
  resolve(api.get_device_list, "ibv_get_device_list");
  resolve(api.free_device_list, "ibv_free_device_list");
  resolve(api.get_device_name, "ibv_get_device_name");
  resolve(api.open_device, "ibv_open_device");
  resolve(api.close_device, "ibv_close_device");
  resolve(api.query_device, "ibv_query_device");
  resolve(api.query_port, "ibv_query_port");
  resolve(api.query_gid, "ibv_query_gid");
  resolve(api.alloc_pd, "ibv_alloc_pd");
  resolve(api.dealloc_pd, "ibv_dealloc_pd");
  resolve(api.reg_mr, "ibv_reg_mr");
  resolve(api.dereg_mr, "ibv_dereg_mr");
  resolve(api.create_cq, "ibv_create_cq");
  resolve(api.destroy_cq, "ibv_destroy_cq");
  resolve(api.create_qp, "ibv_create_qp");
  resolve(api.modify_qp, "ibv_modify_qp");
  resolve(api.destroy_qp, "ibv_destroy_qp");
  resolve(api.wc_status_str, "ibv_wc_status_str");
  // Without events, the port set falls back to polling ports.
  auto optional = [&](auto& slot, const char* symbol) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(handle, symbol));
  };
  optional(api.get_async_event, "ibv_get_async_event");
  optional(api.ack_async_event, "ibv_ack_async_event");
  optional(api.event_type_str, "ibv_event_type_str");
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat("verbs library lacks %s", missing));
  }
  return api;  // the handle stays open for the life of the process
}

}  // namespace

absl::StatusOr<const VerbsApi*> LoadVerbs() {
  static const absl::StatusOr<VerbsApi>* loaded = new absl::StatusOr<VerbsApi>(Load());
  if (!loaded->ok()) return loaded->status();
  return &**loaded;
}

}  // namespace unipool
