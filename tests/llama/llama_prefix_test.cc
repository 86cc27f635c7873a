// llama.cpp engines sharing prompt KV through the pool: unipool-llama
// processes against a local cluster (real directory and nodes on loopback),
// the real llama.cpp, tiny random llama models written by gguf-py. An engine
// that restores blocks must produce the logits of one that computed them.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/llama/prefix_cache.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

constexpr int kBlock = 16;
constexpr int kGenerate = 20;

// What one unipool-llama run printed, and the logits it wrote.
struct LlamaRun {
  testing::RunResult result;
  size_t prompt = 0, restored = 0, computed = 0, stored = 0, rejected = 0;
  std::vector<float> logits;
};

// The number after `label` on its line of `out` (0 when absent).
size_t Field(const std::string& out, absl::string_view label) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!absl::StartsWith(line, label)) continue;
    absl::string_view rest = line.substr(label.size());
    size_t value = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &value)) return value;
  }
  return 0;
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return !a.empty() && a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

float MaxDifference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  float most = 0;
  for (size_t i = 0; i < a.size(); ++i) most = std::max(most, std::abs(a[i] - b[i]));
  return most;
}

class LlamaPrefixTest : public ::testing::Test {
 protected:
  void SetUp() override { StartCluster({}); }

  void StartCluster(std::vector<std::string> directory_flags) {
    LocalClusterOptions options;
    options.nodes = 2;
    options.directory_flags = std::move(directory_flags);
    auto cluster = testing::StartTestCluster("llama", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    auto client = testing::ConnectTo(*cluster_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    model_ = MakeModel("model.gguf", 1);
    prompt_ = File("prompt.txt");
    // Letters without digits or 'p': one byte token each (no vocabulary
    // piece matches), so the prompt is 1 + 3 + 196 = 200 tokens.
    std::string text;
    for (int i = 0; i < 196; ++i) text += static_cast<char>('a' + (i * 7 + i / 5) % 15);
    std::ofstream(prompt_) << text;
  }

  std::string File(absl::string_view name) const {
    return absl::StrCat(cluster_->work_dir(), "/", name);
  }

  std::string MakeModel(absl::string_view name, int seed) {
    std::string path = File(name);
    std::string command = absl::StrFormat("/usr/bin/python3 %s/make_model.py %s %s --seed %d",
                                          UNIPOOL_LLAMA_TEST_DIR, UNIPOOL_GGUF_PY, path, seed);
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return path;
  }

  // Runs unipool-llama with the test's defaults (flash attention off,
  // batches of 16 tokens) and `flags` after them (a later flag wins).
  LlamaRun Llama(std::vector<std::string> flags = {}, std::vector<std::string> env = {}) {
    static int runs = 0;
    std::string logits = File(absl::StrCat("logits-", runs++));
    std::vector<std::string> argv = {
        std::string(std::filesystem::path(::testing::internal::GetArgvs()[0]).parent_path() /
                    "unipool-llama"),
        "--model=" + model_,
        "--prompt-file=" + prompt_,
        absl::StrCat("-n=", kGenerate),
        "--directory=" + cluster_->directory_address(),
        "--flash-attn=off",
        absl::StrCat("--batch=", kBlock),
        "--threads=2",
        "--logits-out=" + logits};
    argv.insert(argv.end(), flags.begin(), flags.end());
    LlamaRun run;
    run.result = testing::Run(argv, env, "", absl::Seconds(120));
    EXPECT_EQ(run.result.exit_code, 0) << run.result.err;
    const std::string& out = run.result.out;
    run.prompt = Field(out, "prompt: ");
    run.restored = Field(out, "restored: ");
    run.computed = Field(out, "computed: ");
    run.stored = Field(out, "stored: ");
    run.rejected = Field(out, "rejected: ");
    run.logits = ReadFloats(logits);
    EXPECT_EQ(run.logits.size() % kGenerate, 0u);
    return run;
  }

  // The keys of the prompt's blocks, from the library in this process with
  // the program's configuration, and its options then changed by `adjust`
  // (the context itself stays as the program makes it).
  std::vector<std::string> BlockKeys(
      const std::function<void(llama::PrefixCacheOptions&)>& adjust = nullptr) {
    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_backend_init();
    llama_model* model = llama_model_load_from_file(model_.c_str(), llama_model_default_params());
    EXPECT_NE(model, nullptr);
    llama_context_params params = llama_context_default_params();
    params.n_ctx = 256;
    params.n_batch = params.n_ubatch = kBlock;
    params.n_seq_max = 1;
    params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context* ctx = llama_init_from_model(model, params);
    llama::PrefixCacheOptions options;
    options.model_path = model_;
    options.context_params = params;
    if (adjust) adjust(options);
    auto cache = llama::PrefixCache::Create(*client_, ctx, options);
    EXPECT_TRUE(cache.ok()) << cache.status();
    std::ifstream in(prompt_);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const llama_vocab* vocab = llama_model_get_vocab(model);
    std::vector<llama_token> tokens(text.size() + 8);
    tokens.resize(
        llama_tokenize(vocab, text.data(), text.size(), tokens.data(), tokens.size(), true, false));
    std::vector<std::string> keys =
        cache.ok() ? (*cache)->BlockKeys(tokens) : std::vector<std::string>{};
    cache = absl::InternalError("released");
    llama_free(ctx);
    llama_model_free(model);
    return keys;
  }

  // Full blocks a restore may use: the last token is always computed.
  static size_t Restorable(size_t prompt) { return (prompt - 1) / kBlock * kBlock; }

  testing::TestCluster cluster_;
  std::unique_ptr<Client> client_;
  std::string model_, prompt_;
};

TEST_F(LlamaPrefixTest, AnotherProcessRestoresThePrefixWithTheSameLogits) {
  LlamaRun a = Llama();
  ASSERT_EQ(a.prompt, 200u) << a.result.out;
  EXPECT_EQ(a.restored, 0u);
  EXPECT_EQ(a.stored, 200u / kBlock) << a.result.out;

  LlamaRun b = Llama();
  EXPECT_EQ(b.restored, Restorable(b.prompt)) << b.result.out;
  EXPECT_EQ(b.computed, b.prompt - b.restored);
  EXPECT_EQ(b.stored, 0u);
  LlamaRun same_split = Llama({"--no-pool"});
  EXPECT_TRUE(BitIdentical(b.logits, same_split.logits))
      << "max difference " << MaxDifference(b.logits, same_split.logits);
  EXPECT_TRUE(BitIdentical(a.logits, b.logits));
  LlamaRun one_batch = Llama({"--no-pool", "--batch=512"});
  EXPECT_LT(MaxDifference(b.logits, one_batch.logits), 1e-4);
}

TEST_F(LlamaPrefixTest, FlashAttentionRestoresMatchTheSameBatchSplit) {
  LlamaRun a = Llama({"--flash-attn=on"});
  EXPECT_EQ(a.stored, 200u / kBlock);
  LlamaRun b = Llama({"--flash-attn=on"});
  EXPECT_EQ(b.restored, Restorable(b.prompt)) << b.result.out;
  LlamaRun same_split = Llama({"--flash-attn=on", "--no-pool"});
  EXPECT_TRUE(BitIdentical(b.logits, same_split.logits))
      << "max difference " << MaxDifference(b.logits, same_split.logits);
}

TEST_F(LlamaPrefixTest, ADifferentFingerprintRestoresNothing) {
  ASSERT_EQ(Llama().stored, 200u / kBlock);
  std::string other_model = MakeModel("other.gguf", 2);
  EXPECT_EQ(Llama({"--model=" + other_model}).restored, 0u);
  EXPECT_EQ(Llama({"--cache-type-k=f32"}).restored, 0u);
  EXPECT_EQ(Llama({"--cache-type-v=f32"}).restored, 0u);
  EXPECT_EQ(Llama({"--flash-attn=on"}).restored, 0u);
  EXPECT_EQ(Llama({"--salt=tenant-b"}).restored, 0u);
  EXPECT_EQ(Llama({"--block-tokens=32"}).restored, 0u);
  // And the original configuration still finds its blocks.
  LlamaRun same = Llama();
  EXPECT_EQ(same.restored, Restorable(same.prompt));
}

// The settings the program has no flag for: RoPE and YaRN overrides change
// K (stored after RoPE), so each must change every key.
TEST_F(LlamaPrefixTest, RopeAndYarnSettingsAreInTheFingerprint) {
  const std::vector<std::string> base = BlockKeys();
  ASSERT_EQ(base.size(), 200u / kBlock);
  EXPECT_EQ(BlockKeys(), base);
  const std::vector<std::pair<const char*, std::function<void(llama::PrefixCacheOptions&)>>>
      changes = {
          {"rope_freq_base", [](auto& o) { o.context_params.rope_freq_base = 20000; }},
          {"rope_freq_scale", [](auto& o) { o.context_params.rope_freq_scale = 0.5f; }},
          {"rope_scaling_type",
           [](auto& o) { o.context_params.rope_scaling_type = LLAMA_ROPE_SCALING_TYPE_YARN; }},
          {"yarn_ext_factor", [](auto& o) { o.context_params.yarn_ext_factor = 0.5f; }},
          {"yarn_attn_factor", [](auto& o) { o.context_params.yarn_attn_factor = 2.0f; }},
          {"yarn_beta_fast", [](auto& o) { o.context_params.yarn_beta_fast = 16.0f; }},
          {"yarn_beta_slow", [](auto& o) { o.context_params.yarn_beta_slow = 2.0f; }},
          {"yarn_orig_ctx", [](auto& o) { o.context_params.yarn_orig_ctx = 1024; }},
      };
  for (const auto& [name, change] : changes) {
    std::vector<std::string> keys = BlockKeys(change);
    ASSERT_EQ(keys.size(), base.size()) << name;
    for (size_t i = 0; i < keys.size(); ++i) EXPECT_NE(keys[i], base[i]) << name << " block " << i;
  }
}

TEST_F(LlamaPrefixTest, ACorruptBlockEndsThePrefixAndIsPutAgain) {
  LlamaRun a = Llama();
  std::vector<std::string> keys = BlockKeys();
  ASSERT_EQ(keys.size(), 200u / kBlock);
  // Block 5 changed after it was sealed (the pool's own checksum still
  // holds: it was put that way).
  auto block = client_->Get(keys[5]);
  ASSERT_TRUE(block.ok()) << block.status();
  (*block)[block->size() / 2] ^= 0x40;
  ASSERT_TRUE(client_->Put(keys[5], *block, {.replace = true}).ok());

  LlamaRun b = Llama();
  EXPECT_EQ(b.restored, 5u * kBlock) << b.result.out;
  EXPECT_EQ(b.rejected, 1u);
  EXPECT_TRUE(BitIdentical(b.logits, a.logits));
  // B removed the bad block and put its own: C restores everything.
  EXPECT_EQ(b.stored, 1u) << b.result.out;
  LlamaRun c = Llama();
  EXPECT_EQ(c.restored, Restorable(c.prompt));
  EXPECT_TRUE(BitIdentical(c.logits, a.logits));
}

TEST_F(LlamaPrefixTest, ABlockThatDoesNotFitEndsThePrefix) {
  LlamaRun a = Llama();
  std::vector<std::string> keys = BlockKeys();
  ASSERT_EQ(keys.size(), 200u / kBlock);
  auto block = client_->Get(keys[3]);
  ASSERT_TRUE(block.ok()) << block.status();
  std::vector<uint8_t> longer = *block;
  longer.resize(block->size() + 4096, 7);
  ASSERT_TRUE(client_->Put(keys[3], longer, {.replace = true}).ok());
  LlamaRun b = Llama();
  EXPECT_EQ(b.restored, 3u * kBlock) << b.result.out;
  EXPECT_TRUE(BitIdentical(b.logits, a.logits));
  block->resize(block->size() / 2);
  ASSERT_TRUE(client_->Put(keys[3], *block, {.replace = true}).ok());
  // The shorter block is caught as well (B put its own block 3 back first).
  ASSERT_TRUE(client_->Put(keys[2], *block, {.replace = true}).ok());
  LlamaRun c = Llama();
  EXPECT_EQ(c.restored, 2u * kBlock) << c.result.out;
  EXPECT_TRUE(BitIdentical(c.logits, a.logits));
}

TEST_F(LlamaPrefixTest, AnEvictedMiddleBlockGivesAShorterRestore) {
  cluster_.reset();
  StartCluster({"--lease=1s"});  // so that a block read a moment ago may go
  LlamaRun a = Llama();
  std::vector<std::string> keys = BlockKeys();
  ASSERT_EQ(keys.size(), 200u / kBlock);
  Admin admin(*client_);
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto evicted = admin.Evict(keys[4]);
    return evicted.ok() && *evicted == 1;
  }));
  LlamaRun b = Llama();
  EXPECT_EQ(b.restored, 4u * kBlock) << b.result.out;
  EXPECT_EQ(b.rejected, 0u);
  EXPECT_EQ(b.stored, 1u);  // the missing block; the others were there
  EXPECT_TRUE(BitIdentical(b.logits, a.logits));
  EXPECT_EQ(Llama().restored, Restorable(a.prompt));
}

TEST_F(LlamaPrefixTest, TwoEnginesStoringTheSamePrefixAtOnce) {
  LlamaRun runs[2];
  std::thread first([&] { runs[0] = Llama(); });
  runs[1] = Llama();
  first.join();
  for (const LlamaRun& run : runs) {
    EXPECT_EQ(run.result.exit_code, 0);
    EXPECT_EQ(run.result.err, "");
  }
  // Each block was put once, by one engine or the other.
  EXPECT_EQ(runs[0].stored + runs[1].stored, 200u / kBlock);
  EXPECT_TRUE(BitIdentical(runs[0].logits, runs[1].logits));
  LlamaRun c = Llama();
  EXPECT_EQ(c.restored, Restorable(c.prompt));
  EXPECT_TRUE(BitIdentical(c.logits, runs[0].logits));
}

TEST_F(LlamaPrefixTest, AnUnknownStateLayoutIsRefusedAndComputed) {
  Llama();  // blocks in the pool that a doctored engine must not use
  LlamaRun doctored = Llama({}, {absl::StrCat("LD_PRELOAD=", UNIPOOL_DOCTORED_STATE)});
  std::vector<std::string> lines = absl::StrSplit(doctored.result.err, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << doctored.result.err;
  EXPECT_TRUE(
      absl::StartsWith(lines[0], absl::StrCat("unipool-llama: llama.cpp ", llama_version())))
      << lines[0];
  EXPECT_NE(lines[0].find("does not read"), std::string::npos) << lines[0];
  EXPECT_EQ(doctored.restored, 0u);
  EXPECT_EQ(doctored.computed, doctored.prompt);
  EXPECT_TRUE(BitIdentical(doctored.logits, Llama({"--no-pool"}).logits));
}

TEST_F(LlamaPrefixTest, BadUsageIsOneLineAndExitTwo) {
  std::string program =
      std::filesystem::path(::testing::internal::GetArgvs()[0]).parent_path() / "unipool-llama";
  testing::RunResult missing = testing::Run({program, "--prompt-file=" + prompt_});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "unipool-llama: --model is required\n");
  testing::RunResult bad = testing::Run(
      {program, "--model=" + model_, "--prompt-file=" + prompt_, "--flash-attn=maybe"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--flash-attn must be on, off or auto"), std::string::npos) << bad.err;
  testing::RunResult help = testing::Run({program, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"model", "prompt_file", "directory", "no_pool", "block_tokens", "salt",
                           "flash_attn", "cache_type_k", "batch", "logits_out"}) {
    EXPECT_NE(help.out.find(absl::StrCat("-", flag)), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace unipool
