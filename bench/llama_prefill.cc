// unipool-llama-bench answers: for a 2,048-token prompt, how long does
// llama.cpp take to compute its KV (prefill), against restoring that KV
// from the pool with unipool::llama::PrefixCache; and how fast is the
// restore next to a memcpy of the same bytes?
//
//   unipool-llama-bench --model M.gguf [--tokens 2048] [--batch 512] [--rounds 3]
//
// It starts its own local cluster (one node on loopback, shared memory and
// TCP as a client on the node's machine would use), prefills the prompt
// once (timed), stores its blocks, then restores them into an emptied
// sequence --rounds times (best and first reported). Beside the restore,
// its two big parts timed alone: the pool's GetPrefix of the blocks and
// llama.cpp's own llama_state_seq_set_data of the same state; and two
// baselines of the same bytes: a memcpy between touched buffers, and
// zeroing a new vector (this machine's page-fault cost). Token ids are
// pseudo-random in the vocabulary: the KV's size and cost do not depend on
// them. Prints one markdown table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/llama/prefix_cache.h"
#include "unipool/tools/local_cluster.h"

ABSL_FLAG(std::string, model, "",
          "GGUF model (e.g. tests/llama/make_model.py --layers 4 --width 2048)");
ABSL_FLAG(int, tokens, 2048, "prompt tokens");
ABSL_FLAG(int, batch, 512, "tokens per llama_decode call");
ABSL_FLAG(int, rounds, 3, "restores (the best is reported beside the first)");
ABSL_FLAG(int, threads, 0, "llama.cpp threads (0: its default)");

namespace {

constexpr char kProgram[] = "unipool-llama-bench";
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << kProgram << ": " << what << "\n";
  std::exit(1);
}

// Prefill as an engine does it: batches of --batch, logits for the last.
void Decode(llama_context* ctx, std::span<const llama_token> tokens, llama_pos first) {
  const int batch = absl::GetFlag(FLAGS_batch);
  llama_batch b = llama_batch_init(batch, 0, 1);
  for (size_t at = 0; at < tokens.size(); at += batch) {
    b.n_tokens = static_cast<int>(std::min<size_t>(batch, tokens.size() - at));
    for (int i = 0; i < b.n_tokens; ++i) {
      b.token[i] = tokens[at + i];
      b.pos[i] = first + static_cast<llama_pos>(at + i);
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = at + i + 1 == tokens.size();
    }
    if (llama_decode(ctx, b) != 0) Fail("llama_decode failed");
  }
  llama_batch_free(b);
}

// Seconds of the fastest of `rounds` memcpys of `bytes`.
double MemcpySeconds(size_t bytes, int rounds) {
  std::vector<uint8_t> from(bytes, 1), to(bytes);
  double best = 1e9;
  for (int r = 0; r < rounds; ++r) {
    auto start = Clock::now();
    std::memcpy(to.data(), from.data(), bytes);
    best = std::min(best, SecondsSince(start));
  }
  return best;
}

// Seconds to zero a new std::vector of `bytes`: its page faults, the cost
// Restore paid twice per call while its buffers were vectors (fresh pages
// now come mapped whole: integrations/llama/page_buffer.h).
double FreshVectorSeconds(size_t bytes) {
  auto start = Clock::now();
  std::vector<uint8_t> fresh(bytes);
  asm volatile("" : : "r"(fresh.data()) : "memory");  // the zeroing stays
  return SecondsSince(start);
}

// Seconds the pool alone takes to read the blocks of `restored` tokens
// (one GetPrefix into one buffer, as Restore does).
double GetPrefixSeconds(unipool::Client& client, const unipool::llama::PrefixCache& cache,
                        std::span<const llama_token> restored, size_t block_bytes) {
  std::vector<std::string> keys = cache.BlockKeys(restored);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<uint8_t> values(keys.size() * block_bytes);
  std::vector<std::span<uint8_t>> buffers;
  for (size_t i = 0; i < keys.size(); ++i)
    buffers.emplace_back(&values[i * block_bytes], block_bytes);
  auto start = Clock::now();
  auto n = client.GetPrefix(views, buffers);
  if (!n.ok() || *n != keys.size()) Fail("GetPrefix did not read every block");
  return SecondsSince(start);
}

// Seconds llama.cpp alone takes to set the prefix's state (saved once).
double SetDataSeconds(llama_context* ctx, size_t restored_tokens) {
  std::vector<uint8_t> state(llama_state_seq_get_size(ctx, 0));
  state.resize(llama_state_seq_get_data(ctx, state.data(), state.size(), 0));
  llama_memory_seq_rm(llama_get_memory(ctx), 0, -1, -1);
  auto start = Clock::now();
  if (llama_state_seq_set_data(ctx, state.data(), state.size(), 0) != state.size()) {
    Fail("llama_state_seq_set_data refused a saved state");
  }
  return SecondsSince(start);
}

void Row(const char* what, double seconds, const std::string& note) {
  std::printf("| %s | %.1f | %s |\n", what, seconds * 1e3, note.c_str());
}

void Bench(llama_context* ctx, const llama_context_params& params, llama_model* model,
           unipool::Client& client) {
  unipool::llama::PrefixCacheOptions options;
  options.model_path = absl::GetFlag(FLAGS_model);
  options.context_params = params;
  auto cache = unipool::llama::PrefixCache::Create(client, ctx, options);
  if (!cache.ok()) Fail(std::string(cache.status().message()));
  const int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::mt19937 random(7);
  std::vector<llama_token> tokens(absl::GetFlag(FLAGS_tokens));
  for (llama_token& t : tokens) t = static_cast<llama_token>(random() % vocab);

  auto start = Clock::now();
  Decode(ctx, tokens, 0);
  const double prefill = SecondsSince(start);
  unipool::llama::PrefixCacheStats stored;
  start = Clock::now();
  if (auto s = (*cache)->Store(ctx, 0, tokens, &stored); !s.ok()) Fail(std::string(s.message()));
  const double store = SecondsSince(start);

  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  double first = 0, best = 1e9;
  unipool::llama::PrefixCacheStats restored;
  for (int r = 0; r < rounds; ++r) {
    llama_memory_seq_rm(llama_get_memory(ctx), 0, -1, -1);
    start = Clock::now();
    (*cache)->Restore(ctx, 0, tokens, &restored);
    double seconds = SecondsSince(start);
    if (r == 0) first = seconds;
    best = std::min(best, seconds);
  }
  if (restored.tokens_restored == 0) Fail("nothing was restored");
  const size_t kv_bytes = restored.tokens_restored * (*cache)->BytesPerToken();
  const double get_prefix =
      GetPrefixSeconds(client, **cache, std::span(tokens).first(restored.tokens_restored),
                       restored.bytes / (restored.tokens_restored / options.block_tokens));
  const double set_data = SetDataSeconds(ctx, restored.tokens_restored);
  const double copy = MemcpySeconds(kv_bytes, rounds);
  const double fresh = FreshVectorSeconds(kv_bytes);
  auto gbps = [&](double seconds) {
    return absl::StrFormat("%.2f GB/s", kv_bytes / seconds / 1e9);
  };

  std::printf(
      "model: %s, %d layers, width %d; prompt %zu tokens; KV %zu bytes/token (%s for "
      "the %zu restored tokens)\n\n",
      std::filesystem::path(options.model_path).filename().c_str(), llama_model_n_layer(model),
      llama_model_n_embd(model), tokens.size(), (*cache)->BytesPerToken(),
      unipool::FormatSize(kv_bytes).c_str(), restored.tokens_restored);
  std::printf("| step | ms | note |\n|---|---|---|\n");
  Row("prefill (compute)", prefill,
      absl::StrFormat("%zu tokens, batches of %d", tokens.size(), absl::GetFlag(FLAGS_batch)));
  Row("store", store, absl::StrFormat("%zu blocks put", stored.blocks_put));
  Row("restore, first", first,
      gbps(first) + absl::StrFormat(", %.1fx faster than prefill", prefill / first));
  Row("restore, best", best,
      gbps(best) + absl::StrFormat(", %.1fx faster than prefill", prefill / best));
  Row("of which the pool's GetPrefix (alone)", get_prefix, gbps(get_prefix));
  Row("of which llama_state_seq_set_data (alone)", set_data, gbps(set_data));
  Row("memcpy of the same bytes (baseline)", copy,
      gbps(copy) + absl::StrFormat(", restore best = %.2fx memcpy's time", best / copy));
  Row("a new std::vector of the same bytes, zeroed", fresh,
      absl::StrFormat("page faults: %.1fx memcpy's time", fresh / copy));
}

}  // namespace

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv, "unipool-llama-bench --model M.gguf [--tokens 2048]");
  if (absl::GetFlag(FLAGS_model).empty()) unipool::ExitBadUsage(kProgram, "--model is required");
  if (absl::GetFlag(FLAGS_tokens) < 2 || absl::GetFlag(FLAGS_batch) < 1) {
    unipool::ExitBadUsage(kProgram, "--tokens must be 2 or more and --batch 1 or more");
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  llama_model* model =
      llama_model_load_from_file(absl::GetFlag(FLAGS_model).c_str(), llama_model_default_params());
  if (model == nullptr) Fail("cannot load " + absl::GetFlag(FLAGS_model));
  llama_context_params params = llama_context_default_params();
  params.n_ctx = absl::GetFlag(FLAGS_tokens) + 16;
  params.n_batch = params.n_ubatch = absl::GetFlag(FLAGS_batch);
  params.n_seq_max = 1;
  if (absl::GetFlag(FLAGS_threads) > 0) {
    params.n_threads = params.n_threads_batch = absl::GetFlag(FLAGS_threads);
  }
  llama_context* ctx = llama_init_from_model(model, params);
  if (ctx == nullptr) Fail("cannot create a context");

  std::string dir =
      std::filesystem::temp_directory_path() / absl::StrFormat("unipool-llama-bench-%d", getpid());
  unipool::LocalClusterOptions cluster_options;
  cluster_options.nodes = 1;
  cluster_options.pool_size = 1ull << 30;
  cluster_options.work_dir = dir;
  auto cluster = unipool::LocalCluster::Start(cluster_options);
  if (!cluster.ok()) Fail(std::string(cluster.status().message()));
  unipool::ClientOptions client_options;
  client_options.directory = (*cluster)->directory_address();
  auto client = unipool::Client::Connect(client_options);
  if (!client.ok()) Fail(std::string(client.status().message()));
  Bench(ctx, params, model, **client);
  client->reset();
  cluster->reset();
  std::filesystem::remove_all(dir);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
