// LD_PRELOAD library that makes llama.cpp look like a future version: every
// saved sequence state gets a 4-byte field after its 8-byte header (as a
// format version bump would add). The layout probe must refuse it.
#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "llama.h"

namespace {

constexpr size_t kHeader = 8;
constexpr uint32_t kInserted = 4;

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" size_t llama_state_seq_get_size(llama_context* ctx, llama_seq_id seq) {
  static auto real = Next<size_t (*)(llama_context*, llama_seq_id)>("llama_state_seq_get_size");
  size_t n = real(ctx, seq);
  return n == 0 ? 0 : n + sizeof(kInserted);
}

extern "C" size_t llama_state_seq_get_data(llama_context* ctx, uint8_t* dst, size_t size,
                                           llama_seq_id seq) {
  static auto real =
      Next<size_t (*)(llama_context*, uint8_t*, size_t, llama_seq_id)>("llama_state_seq_get_data");
  std::vector<uint8_t> state(size);
  size_t n = real(ctx, state.data(), state.size(), seq);
  if (n < kHeader || n + sizeof(kInserted) > size) return 0;
  std::memcpy(dst, state.data(), kHeader);
  std::memcpy(dst + kHeader, &kInserted, sizeof(kInserted));
  std::memcpy(dst + kHeader + sizeof(kInserted), state.data() + kHeader, n - kHeader);
  return n + sizeof(kInserted);
}
