// unipool-llama: generates with llama.cpp, using the pool as its prompt
// cache. Restores the longest cached prefix of the prompt, computes the rest,
// shares the new blocks, generates -n tokens greedily, and prints what came
// from the pool, what was computed and the prefill time saved. Two processes
// (or machines) given prompts with a common start share its KV.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "llama_calls.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/llama/prefix_cache.h"

ABSL_FLAG(std::string, model, "", "the GGUF model file (required)");
ABSL_FLAG(std::string, prompt_file, "", "a text file holding the prompt (required)");
ABSL_FLAG(int, n, 32, "tokens to generate after the prompt (greedy)");
ABSL_FLAG(std::string, directory, "127.0.0.1:7300", "HOST:PORT of the pool's directory");
ABSL_FLAG(std::string, key_file, "",
          "the pool's cluster key or a token (default: $UNIPOOL_KEY_FILE, else none)");
ABSL_FLAG(bool, no_pool, false, "compute the whole prompt without the pool (a baseline)");
ABSL_FLAG(int, block_tokens, 16, "tokens per cached block (engines share only equal sizes)");
ABSL_FLAG(std::string, salt, "", "tenant salt: engines with different salts share nothing");
ABSL_FLAG(std::string, flash_attn, "auto", "flash attention: on, off or auto");
ABSL_FLAG(std::string, cache_type_k, "f16", "K cache type: f32, f16, bf16 or q8_0");
ABSL_FLAG(std::string, cache_type_v, "f16", "V cache type: f32, f16, bf16 or q8_0");
ABSL_FLAG(int, batch, 512, "tokens per llama_decode call (the batch split)");
ABSL_FLAG(int, threads, 0, "CPU threads (default 0: llama.cpp's default)");
ABSL_FLAG(std::string, logits_out, "",
          "write the logits of every generated position to this file (float32, n x vocab)");
ABSL_FLAG(bool, verbose, false, "show llama.cpp's own log");

namespace {

constexpr char kProgram[] = "unipool-llama";
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  std::exit(1);
}

ggml_type CacheType(const char* flag, const std::string& name) {
  if (name == "f32") return GGML_TYPE_F32;
  if (name == "f16") return GGML_TYPE_F16;
  if (name == "bf16") return GGML_TYPE_BF16;
  if (name == "q8_0") return GGML_TYPE_Q8_0;
  unipool::ExitBadUsage(
      kProgram, absl::StrFormat("--%s must be f32, f16, bf16 or q8_0, not '%s'", flag, name));
}

llama_flash_attn_type FlashAttn(const std::string& name) {
  if (name == "on") return LLAMA_FLASH_ATTN_TYPE_ENABLED;
  if (name == "off") return LLAMA_FLASH_ATTN_TYPE_DISABLED;
  if (name == "auto") return LLAMA_FLASH_ATTN_TYPE_AUTO;
  unipool::ExitBadUsage(kProgram,
                        absl::StrFormat("--flash-attn must be on, off or auto, not '%s'", name));
}

void CheckFlags() {
  if (absl::GetFlag(FLAGS_model).empty()) unipool::ExitBadUsage(kProgram, "--model is required");
  if (absl::GetFlag(FLAGS_prompt_file).empty()) {
    unipool::ExitBadUsage(kProgram, "--prompt-file is required");
  }
  if (absl::GetFlag(FLAGS_n) < 0) unipool::ExitBadUsage(kProgram, "-n must be 0 or more");
  if (absl::GetFlag(FLAGS_batch) < 1) unipool::ExitBadUsage(kProgram, "--batch must be 1 or more");
  if (absl::GetFlag(FLAGS_threads) < 0) {
    unipool::ExitBadUsage(kProgram, "--threads must be 0 (default) or more");
  }
  int block = absl::GetFlag(FLAGS_block_tokens);
  if (block < 1 || block > 4096) unipool::ExitBadUsage(kProgram, "--block-tokens must be 1..4096");
}

std::string ReadPrompt() {
  std::ifstream in(absl::GetFlag(FLAGS_prompt_file));
  if (!in) Fail("cannot read --prompt-file " + absl::GetFlag(FLAGS_prompt_file));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<llama_token> Tokenize(const llama_vocab* vocab, const std::string& text) {
  int n = -llama_tokenize(vocab, text.data(), text.size(), nullptr, 0, true, false);
  std::vector<llama_token> tokens(std::max(n, 0));
  llama_tokenize(vocab, text.data(), text.size(), tokens.data(), tokens.size(), true, false);
  if (tokens.empty()) Fail("the prompt has no tokens");
  return tokens;
}

llama_context_params ContextParams(size_t prompt_tokens) {
  llama_context_params p = llama_context_default_params();
  p.n_ctx = static_cast<uint32_t>(prompt_tokens + absl::GetFlag(FLAGS_n) + 16);
  p.n_batch = p.n_ubatch = static_cast<uint32_t>(absl::GetFlag(FLAGS_batch));
  p.n_seq_max = 1;
  p.flash_attn_type = FlashAttn(absl::GetFlag(FLAGS_flash_attn));
  p.type_k = CacheType("cache-type-k", absl::GetFlag(FLAGS_cache_type_k));
  p.type_v = CacheType("cache-type-v", absl::GetFlag(FLAGS_cache_type_v));
  if (int threads = absl::GetFlag(FLAGS_threads); threads > 0) {
    p.n_threads = p.n_threads_batch = threads;
  }
  return p;
}

// The pool and the cache over it; null (after one line saying why) when
// either cannot be had: the program then computes everything.
struct Pool {
  std::unique_ptr<unipool::Client> client;
  std::unique_ptr<unipool::llama::PrefixCache> cache;
};
Pool OpenPool(llama_context* ctx, const llama_context_params& params) {
  Pool pool;
  if (absl::GetFlag(FLAGS_no_pool)) return pool;
  unipool::ClientOptions options;
  options.directory = absl::GetFlag(FLAGS_directory);
  options.key_file = absl::GetFlag(FLAGS_key_file);
  options.name = kProgram;
  auto client = unipool::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << kProgram << ": " << client.status().message() << "; computing without the pool\n";
    return pool;
  }
  unipool::llama::PrefixCacheOptions cache_options;
  cache_options.model_path = absl::GetFlag(FLAGS_model);
  cache_options.context_params = params;
  cache_options.block_tokens = absl::GetFlag(FLAGS_block_tokens);
  cache_options.tenant_salt = absl::GetFlag(FLAGS_salt);
  auto cache = unipool::llama::PrefixCache::Create(**client, ctx, cache_options);
  if (!cache.ok()) {
    std::cerr << kProgram << ": " << cache.status().message() << "\n";
    return pool;
  }
  pool.client = std::move(*client);
  pool.cache = std::move(*cache);
  return pool;
}

llama_token Argmax(const float* logits, int vocab) {
  return static_cast<llama_token>(std::max_element(logits, logits + vocab) - logits);
}

// Greedy generation from the logits of the prompt's last token; every
// position's logits go to `logits_out` when it is open.
std::string Generate(llama_context* ctx, const llama_vocab* vocab, llama_pos pos,
                     std::FILE* logits_out) {
  const int vocab_size = llama_vocab_n_tokens(vocab);
  std::string text;
  for (int i = 0; i < absl::GetFlag(FLAGS_n); ++i) {
    const float* logits = llama_get_logits_ith(ctx, -1);
    if (logits_out != nullptr) std::fwrite(logits, sizeof(float), vocab_size, logits_out);
    llama_token next = Argmax(logits, vocab_size);
    char piece[256];
    int n = llama_token_to_piece(vocab, next, piece, sizeof(piece), 0, false);
    if (n > 0) text.append(piece, n);
    llama_token one[] = {next};
    if (auto s = unipool::llama::DecodeTokens(ctx, 0, one, pos++, 1); !s.ok()) {
      Fail(std::string(s.message()));
    }
  }
  return text;
}

// The prefill time the restored tokens saved, estimated from this run's own
// rate. A few computed tokens (the tail after a restore) run far below the
// per-token cost of a long prefill, so their rate would inflate the estimate:
// below one block computed, no estimate is printed.
void PrintTimeSaved(size_t restored, double restore_ms, size_t computed, double compute_ms,
                    size_t block_tokens) {
  if (restored == 0) {
    std::printf("prefill time saved: 0 ms (nothing restored)\n");
    return;
  }
  if (computed < block_tokens) {
    std::printf(
        "prefill time saved: not estimated (only %zu tokens computed here; a run without the "
        "pool gives the whole prefill's time)\n",
        computed);
    return;
  }
  const double ms_per_token = compute_ms / static_cast<double>(computed);
  std::printf(
      "prefill time saved: %.1f ms (estimate: %zu restored tokens at this run's %.3f "
      "ms/token, less the restore)\n",
      restored * ms_per_token - restore_ms, restored, ms_per_token);
}

void Run() {
  std::string prompt = ReadPrompt();
  llama_model_params model_params = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(absl::GetFlag(FLAGS_model).c_str(), model_params);
  if (model == nullptr) Fail("cannot load model " + absl::GetFlag(FLAGS_model));
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::vector<llama_token> tokens = Tokenize(vocab, prompt);
  llama_context_params params = ContextParams(tokens.size());
  llama_context* ctx = llama_init_from_model(model, params);
  if (ctx == nullptr) Fail("cannot create a llama.cpp context");
  Pool pool = OpenPool(ctx, params);

  unipool::llama::PrefixCacheStats restored, stored;
  auto start = Clock::now();
  if (pool.cache) pool.cache->Restore(ctx, 0, tokens, &restored);
  const double restore_ms = MsSince(start);
  const size_t computed = tokens.size() - restored.tokens_restored;
  start = Clock::now();
  auto decoded = unipool::llama::DecodeTokens(
      ctx, 0, std::span(tokens).subspan(restored.tokens_restored),
      static_cast<llama_pos>(restored.tokens_restored), absl::GetFlag(FLAGS_batch));
  if (!decoded.ok()) Fail(std::string(decoded.message()));
  const double compute_ms = MsSince(start);
  start = Clock::now();
  if (pool.cache) {
    if (auto s = pool.cache->Store(ctx, 0, tokens, &stored); !s.ok()) {
      std::cerr << kProgram << ": storing the prompt's blocks failed: " << s.message() << "\n";
    }
  }
  const double store_ms = MsSince(start);

  std::FILE* logits_out = nullptr;
  if (std::string path = absl::GetFlag(FLAGS_logits_out); !path.empty()) {
    logits_out = std::fopen(path.c_str(), "wb");
    if (logits_out == nullptr) Fail("cannot write --logits-out " + path);
  }
  std::string text = Generate(ctx, vocab, static_cast<llama_pos>(tokens.size()), logits_out);
  if (logits_out != nullptr && std::fclose(logits_out) != 0) Fail("cannot write --logits-out");

  std::printf("prompt: %zu tokens\n", tokens.size());
  std::printf("restored: %zu tokens from the pool (%zu blocks, %s) in %.1f ms\n",
              restored.tokens_restored,
              restored.tokens_restored / absl::GetFlag(FLAGS_block_tokens),
              unipool::FormatSize(restored.bytes).c_str(), restore_ms);
  if (restored.blocks_rejected > 0) {
    std::printf("rejected: %zu blocks (checksum or layout)\n", restored.blocks_rejected);
  }
  std::printf("computed: %zu tokens in %.1f ms\n", computed, compute_ms);
  std::printf("stored: %zu new blocks (%s) in %.1f ms\n", stored.blocks_put,
              unipool::FormatSize(stored.bytes).c_str(), store_ms);
  PrintTimeSaved(restored.tokens_restored, restore_ms, computed, compute_ms,
                 absl::GetFlag(FLAGS_block_tokens));
  std::printf("generated: %d tokens: %s\n", absl::GetFlag(FLAGS_n), text.c_str());
  pool = {};
  llama_free(ctx);
  llama_model_free(model);
}

void QuietLog(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

}  // namespace

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-llama --model M.gguf --prompt-file F [-n N] [--directory D]");
  CheckFlags();
  if (!absl::GetFlag(FLAGS_verbose)) llama_log_set(QuietLog, nullptr);
  llama_backend_init();
  Run();
  llama_backend_free();
  return 0;
}
