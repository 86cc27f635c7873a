// Tensors and models end to end with real processes on loopback: a
// directory and three nodes of 256 MiB (LocalCluster), models written by
// numpy (make_model.py) including a 400 MiB tensor no single node can hold.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/common/auth.h"
#include "unipool/tensor.h"
#include "unipool/tensor/dtype.h"
#include "unipool/tensor/records.h"
#include "unipool/tensor/safetensors.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

constexpr uint64_t kNodeBytes = 256ull << 20;
constexpr int kBigMiB = 400;  // > any node's slab
constexpr char kBig[] = "model.layers.0.big.weight";

// Bytes [offset, offset + n) of a file.
std::vector<uint8_t> FileBytes(const std::string& path, uint64_t offset, uint64_t n) {
  std::vector<uint8_t> out(n);
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_EQ(::pread(fd, out.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
  return out;
}

bool SameFiles(const std::string& a, const std::string& b) {
  if (std::filesystem::file_size(a) != std::filesystem::file_size(b)) return false;
  uint64_t size = std::filesystem::file_size(a);
  for (uint64_t at = 0; at < size; at += 64 << 20) {
    uint64_t n = std::min<uint64_t>(64 << 20, size - at);
    if (FileBytes(a, at, n) != FileBytes(b, at, n)) return false;
  }
  return true;
}

class TensorStoreTest : public ::testing::Test {
 protected:
  void StartCluster(std::vector<std::string> directory_flags = {}, std::string key_file = {}) {
    LocalClusterOptions options;
    options.key_file = key_file;
    options.nodes = 3;
    options.pool_size = kNodeBytes;
    options.directory_flags = std::move(directory_flags);
    auto cluster = testing::StartTestCluster("tensor", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    Connect(/*shm=*/true, key_file);
  }
  void Connect(bool shm = true, std::string key_file = {}) {
    ClientOptions options;
    options.directory = cluster_->directory_address();
    options.key_file = std::move(key_file);
    options.name = "tensor-test";
    options.shm = shm;
    options.rdma = RdmaPolicy::kOff;
    auto tensors = TensorClient::Connect(options);
    ASSERT_TRUE(tensors.ok()) << tensors.status();
    tensors_ = std::move(*tensors);
  }
  // Writes the numpy models into the work directory.
  std::string MakeModels(int big_mib) {
    std::string dir = cluster_->work_dir() + "/models";
    std::filesystem::create_directories(dir);
    std::string command = absl::StrFormat("/usr/bin/python3 %s/make_model.py %s %d",
                                          UNIPOOL_TENSOR_TEST_DIR, dir, big_mib);
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return dir;
  }
  // Bytes of tensor `name` of a safetensors file, from the file.
  std::vector<uint8_t> TensorBytesInFile(const std::string& path, std::string_view name,
                                         uint64_t offset = 0, uint64_t n = UINT64_MAX) {
    auto file = ReadSafetensorsFile(path);
    EXPECT_TRUE(file.ok()) << file.status();
    for (const SafetensorsTensor& t : file->header.tensors) {
      if (t.name == name) {
        return FileBytes(path, file->header.data_offset + t.begin + offset,
                         std::min(n, t.bytes() - offset));
      }
    }
    ADD_FAILURE() << "no tensor " << name << " in " << path;
    return {};
  }
  uint64_t StripeObjects() {
    Admin admin(tensors_->client());
    auto page = admin.List(kStripeKeyPrefix, 16384);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->entries.size() : 0;
  }

  testing::TestCluster cluster_;
  std::unique_ptr<TensorClient> tensors_;
};

TEST_F(TensorStoreTest, LoadReadAndExportAModelLargerThanAnyNode) {
  StartCluster();
  std::string dir = MakeModels(kBigMiB);
  std::string file = dir + "/model.safetensors";
  uint64_t last_done = 0;
  int calls = 0;
  ModelLoadOptions load;
  load.progress = [&](const LoadProgress& p) {
    EXPECT_GE(p.bytes_done, last_done);
    last_done = p.bytes_done;
    ++calls;
  };
  ASSERT_TRUE(tensors_->LoadModel(file, "m", load).ok());
  EXPECT_GT(calls, 1);
  EXPECT_EQ(last_done,
            std::filesystem::file_size(file) - ReadSafetensorsFile(file)->header.data_offset);

  auto info = tensors_->GetModelInfo("m");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->tensor_count, 4u);
  EXPECT_EQ(info->metadata.at("source"), "numpy");
  auto big = tensors_->GetTensorInfo(std::string("m/") + kBig);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->dtype, "F32");
  EXPECT_EQ(big->length, uint64_t{kBigMiB} << 20);
  EXPECT_GT(big->length, kNodeBytes);
  std::set<uint32_t> nodes;
  for (const TensorStripe& s : big->stripes) nodes.insert(s.node_ids[0]);
  EXPECT_GE(nodes.size(), 2u) << "a tensor larger than a node spans nodes";

  // Whole tensors.
  for (const TensorInfo& t : info->tensors) {
    std::vector<uint8_t> got(t.length);
    auto n = tensors_->GetTensor("m/" + t.name, got);
    ASSERT_TRUE(n.ok()) << t.name << ": " << n.status();
    ASSERT_EQ(got, TensorBytesInFile(file, t.name)) << t.name;
  }
  // A byte range across a stripe boundary.
  std::vector<uint8_t> range(3 << 20);
  uint64_t begin = (64ull << 20) - 12345;
  ASSERT_TRUE(tensors_->GetTensorRange(std::string("m/") + kBig, begin, range).ok());
  EXPECT_EQ(range, TensorBytesInFile(file, kBig, begin, range.size()));
  // Rows 15..17 of the big tensor (4 MiB rows).
  uint64_t row_bytes = (uint64_t{kBigMiB} << 20) / 100;
  std::vector<uint8_t> rows(3 * row_bytes);
  ASSERT_TRUE(tensors_->GetTensorRows(std::string("m/") + kBig, 15, 3, rows).ok());
  EXPECT_EQ(rows, TensorBytesInFile(file, kBig, 15 * row_bytes, 3 * row_bytes));
  // Columns (strided): 10 columns of BF16 [1000, 64] and of the I8 [333, 77].
  struct Slice {
    std::string name;
    uint64_t rows, cols, element, begin, count;
  };
  for (const Slice& s : {Slice{"model.embed_tokens.weight", 1000, 64, 2, 30, 10},
                         Slice{"model.layers.0.q_proj.weight", 333, 77, 1, 70, 7}}) {
    std::vector<uint8_t> whole = TensorBytesInFile(file, s.name);
    std::vector<uint8_t> expected;
    for (uint64_t r = 0; r < s.rows; ++r) {
      auto at = whole.begin() + (r * s.cols + s.begin) * s.element;
      expected.insert(expected.end(), at, at + s.count * s.element);
    }
    std::vector<uint8_t> got(expected.size());
    auto n = tensors_->GetTensorColumns("m/" + s.name, s.begin, s.count, got);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(got, expected) << s.name;
  }

  // Export: byte-identical.
  std::string out = cluster_->work_dir() + "/export";
  ASSERT_TRUE(tensors_->ExportModel("m", out).ok());
  EXPECT_TRUE(SameFiles(file, out + "/model.safetensors"));

  // A sharded folder with its index.
  ASSERT_TRUE(tensors_->LoadModel(dir + "/sharded", "s").ok());
  std::string shard_out = cluster_->work_dir() + "/export-sharded";
  ASSERT_TRUE(tensors_->ExportModel("s", shard_out).ok());
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/sharded")) {
    EXPECT_TRUE(SameFiles(entry.path(), shard_out + "/" + entry.path().filename().string()))
        << entry.path();
  }
  auto models = tensors_->ListModels();
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->size(), 2u);
  EXPECT_TRUE(absl::IsAlreadyExists(tensors_->LoadModel(dir + "/sharded", "s")));

  // Removal frees every stripe.
  ASSERT_TRUE(tensors_->RemoveModel("m").ok());
  ASSERT_TRUE(tensors_->RemoveModel("s").ok());
  EXPECT_TRUE(absl::IsNotFound(tensors_->GetTensorInfo(std::string("m/") + kBig).status()));
  EXPECT_EQ(StripeObjects(), 0u);
  EXPECT_EQ(Admin(tensors_->client()).State()->objects, 0u);
}

// Malformed headers are rejected before anything is stored.
TEST_F(TensorStoreTest, MalformedFilesLeaveThePoolUnchanged) {
  StartCluster();
  ASSERT_TRUE(
      tensors_->PutTensor("keep", "U8", std::vector<uint64_t>{4}, std::vector<uint8_t>{1, 2, 3, 4})
          .ok());
  auto before = Admin(tensors_->client()).State();
  ASSERT_TRUE(before.ok());
  struct Bad {
    std::string json;
    std::string data;
    std::string mentions;
  };
  std::string ok_entry = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";
  std::vector<Bad> cases = {
      {R"({"w":{"dtype":"Q9","shape":[4],"data_offsets":[0,4]}})", "abcd", "'w': unknown dtype"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd", "'w': dtype F32"},
      {R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", "abcd", "'w': data_offsets"},
      {"{" + ok_entry + R"(,"w":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", "abcdef",
       "'w': data [2, 6] overlaps"},
      {"{" + ok_entry + R"(,"w":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", "abcdefgh",
       "'w': gap"},
      {"{" + ok_entry + "," + ok_entry + "}", "abcd", "'a' appears twice"},
      {R"({"w":)", "", "not valid JSON"},
  };
  int i = 0;
  for (const Bad& c : cases) {
    std::string path = cluster_->work_dir() + absl::StrFormat("/bad%d.safetensors", i++);
    std::string bytes(8, '\0');
    for (int b = 0; b < 8; ++b) bytes[b] = static_cast<char>((c.json.size() >> (8 * b)) & 0xff);
    std::ofstream(path, std::ios::binary) << bytes << c.json << c.data;
    absl::Status s = tensors_->LoadModel(path, "bad");
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_NE(s.message().find(c.mentions), std::string::npos) << s << " vs " << c.mentions;
  }
  // A header claiming more bytes than the file has.
  std::string path = cluster_->work_dir() + "/short.safetensors";
  std::ofstream(path, std::ios::binary)
      << std::string("\xff\x00\x00\x00\x00\x00\x00\x00", 8) << "{}";
  absl::Status s = tensors_->LoadModel(path, "bad");
  EXPECT_NE(s.message().find("longer than the file"), std::string::npos) << s;

  auto after = Admin(tensors_->client()).State();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->objects, before->objects);
  EXPECT_EQ(after->used, before->used);
  EXPECT_TRUE(tensors_->ListModels()->empty());
  EXPECT_EQ(tensors_->ListTensors()->size(), 1u);
}

// Replicated stripes: the model stays whole and readable without a node.
TEST_F(TensorStoreTest, ReplicatedModelSurvivesANodeKill) {
  StartCluster();
  std::string dir = MakeModels(48);
  std::string file = dir + "/model.safetensors";
  ModelLoadOptions load;
  load.replicas = 2;
  load.stripe_size = 4 << 20;
  ASSERT_TRUE(tensors_->LoadModel(file, "r", load).ok());
  ASSERT_TRUE(cluster_->KillNode(1).ok());
  ASSERT_TRUE(cluster_->WaitForNodeDown(1, absl::Seconds(60)).ok());
  auto info = tensors_->GetModelInfo("r");
  ASSERT_TRUE(info.ok()) << info.status();
  for (const TensorInfo& t : info->tensors) {
    std::vector<uint8_t> got(t.length);
    auto n = tensors_->GetTensor("r/" + t.name, got);
    ASSERT_TRUE(n.ok()) << t.name << ": " << n.status();
    EXPECT_EQ(got, TensorBytesInFile(file, t.name)) << t.name;
  }
}

// Filling the pool evicts unpinned tensors' stripes; a tensor is then gone
// whole (with its model), never partly readable; a pinned model stays.
TEST_F(TensorStoreTest, EvictionNeverLeavesAPartialTensor) {
  StartCluster();
  std::vector<uint8_t> bytes(96 << 20);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + (i >> 20));
  std::vector<uint64_t> shape = {96, 1 << 20};
  TensorPutOptions put;
  put.stripe_size = 8 << 20;
  ASSERT_TRUE(tensors_->PutTensor("loose", "U8", shape, bytes, put).ok());
  std::string dir = MakeModels(48);
  ModelLoadOptions load;
  load.pin = true;
  load.stripe_size = 8 << 20;
  ASSERT_TRUE(tensors_->LoadModel(dir + "/model.safetensors", "pinned", load).ok());

  // Ordinary pages until the pool has evicted some of the loose tensor.
  std::vector<uint8_t> page(8 << 20, 7);
  Client& client = tensors_->client();
  Admin admin(client);
  uint64_t evictions_before = admin.State()->evictions;
  for (int i = 0; i < 120 && admin.State()->evictions == evictions_before; ++i) {
    ASSERT_TRUE(client.Put(absl::StrFormat("page/%d", i), page).ok());
  }
  ASSERT_GT(admin.State()->evictions, evictions_before);

  // Whatever was evicted, every read of the loose tensor is whole or
  // NotFound: never some stripes without the others.
  std::vector<uint8_t> got(bytes.size());
  absl::StatusOr<uint64_t> whole = tensors_->GetTensor("loose", got);
  std::vector<uint8_t> first(1 << 20);
  absl::Status range = tensors_->GetTensorRange("loose", 0, first);
  if (whole.ok()) {
    EXPECT_EQ(got, bytes);
    EXPECT_TRUE(range.ok());
  } else {
    EXPECT_TRUE(absl::IsNotFound(whole.status())) << whole.status();
    EXPECT_TRUE(absl::IsNotFound(range)) << range;
    EXPECT_TRUE(absl::IsNotFound(tensors_->GetTensorInfo("loose").status()));
  }
  // Once gone, none of its stripes is left behind (only the pinned model's).
  auto pinned = tensors_->GetModelInfo("pinned");
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  uint64_t pinned_stripes = 0;
  for (const TensorInfo& t : pinned->tensors) pinned_stripes += (t.length + (8 << 20) - 1) >> 23;
  if (!whole.ok()) {
    EXPECT_TRUE(testing::WaitUntil([&] {
      return tensors_->ListTensors("loose")->empty() && StripeObjects() == pinned_stripes;
    })) << StripeObjects()
        << " stripes left, " << pinned_stripes << " pinned";
  }
  // The pinned model is whole.
  auto info = tensors_->GetModelInfo("pinned");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->pinned);
  for (const TensorInfo& t : info->tensors) {
    std::vector<uint8_t> buffer(t.length);
    EXPECT_TRUE(tensors_->GetTensor("pinned/" + t.name, buffer).ok()) << t.name;
  }
}

// The directory killed during a load: after its restart the model is whole
// or absent, and an absent model's stripes are freed.
TEST_F(TensorStoreTest, DirectoryKilledDuringALoadLeavesAllOrNothing) {
  StartCluster({"--tensor-orphan-timeout=2s"});
  std::string dir = MakeModels(200);
  std::string file = dir + "/model.safetensors";
  std::atomic<uint64_t> done{0};
  ModelLoadOptions load;
  load.stripe_size = 8 << 20;
  load.progress = [&](const LoadProgress& p) { done = p.bytes_done; };
  absl::Status loaded;
  std::thread loader([&] { loaded = tensors_->LoadModel(file, "k", load); });
  ASSERT_TRUE(testing::WaitUntil([&] { return done.load() >= (64u << 20); }));
  ASSERT_TRUE(cluster_->KillDirectory().ok());
  loader.join();
  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(3, absl::Seconds(60)).ok());
  Connect();
  auto info = tensors_->GetModelInfo("k");
  if (info.ok()) {
    for (const TensorInfo& t : info->tensors) {
      std::vector<uint8_t> got(t.length);
      ASSERT_TRUE(tensors_->GetTensor("k/" + t.name, got).ok()) << t.name;
      EXPECT_EQ(got, TensorBytesInFile(file, t.name)) << t.name;
    }
  } else {
    EXPECT_FALSE(loaded.ok());
    EXPECT_TRUE(absl::IsNotFound(info.status())) << info.status();
    EXPECT_TRUE(tensors_->ListTensors("k/")->empty());
    EXPECT_TRUE(testing::WaitUntil([&] { return StripeObjects() == 0; }))
        << StripeObjects() << " stripes of the failed load are left";
  }
}

// A client token confined to "tenant-a/" puts, reads, lists, pins and removes
// tensors and models named under it, and nothing of another tenant's: not
// its tensors, its model, nor its stripes as objects.
TEST_F(TensorStoreTest, TokensReachOnlyTensorsAndModelsUnderTheirPrefix) {
  testing::TestDir keys("tensor-keys");
  auto key = NewClusterKey();
  ASSERT_TRUE(key.ok()) << key.status();
  auto token = NewToken(*key, wire::Role::Client, "tenant-a/");
  ASSERT_TRUE(token.ok()) << token.status();
  std::string key_path = keys.File("cluster.key"), token_path = keys.File("tenant-a.token");
  ASSERT_TRUE(WriteCredentialFile(key_path, *key).ok());
  ASSERT_TRUE(WriteCredentialFile(token_path, *token).ok());
  StartCluster({}, key_path);
  std::string file = MakeModels(1) + "/model.safetensors";
  absl::Status owner_load = tensors_->LoadModel(file, "tenant-b/m");
  ASSERT_TRUE(owner_load.ok()) << owner_load;
  std::unique_ptr<TensorClient> owner = std::move(tensors_);
  Connect(/*shm=*/true, token_path);
  TensorClient& tenant = *tensors_;

  // Its own: everything works.
  ASSERT_TRUE(tenant.LoadModel(file, "tenant-a/m").ok());
  std::vector<uint8_t> bytes = {1, 2, 3, 4}, got(4);
  std::vector<uint64_t> shape = {4};
  ASSERT_TRUE(tenant.PutTensor("tenant-a/t", "U8", shape, bytes).ok());
  ASSERT_TRUE(tenant.GetTensor("tenant-a/t", got).ok());
  EXPECT_EQ(got, bytes);
  std::vector<uint8_t> bias(17 * 4);
  ASSERT_TRUE(tenant.GetTensor("tenant-a/m/model.norm.bias", bias).ok());
  EXPECT_EQ(bias, TensorBytesInFile(file, "model.norm.bias"));
  EXPECT_TRUE(tenant.PinModel("tenant-a/m").ok());
  EXPECT_EQ(tenant.ListModels("tenant-a/")->size(), 1u);
  EXPECT_EQ(tenant.ListTensors("tenant-a/")->size(), 5u);

  // Another tenant's: refused, whatever the request.
  auto denied = [](const absl::Status& s) {
    return absl::IsPermissionDenied(s) &&
           s.message().find("outside the token's prefix") != std::string::npos;
  };
  std::string theirs = "tenant-b/m/model.norm.bias";
  EXPECT_TRUE(denied(tenant.PutTensor("tenant-b/t", "U8", shape, bytes)));
  EXPECT_TRUE(denied(tenant.LoadModel(file, "tenant-b/m2")));
  EXPECT_TRUE(denied(tenant.GetTensor(theirs, bias).status()));
  EXPECT_TRUE(denied(tenant.GetTensorInfo(theirs).status()));
  EXPECT_TRUE(denied(tenant.GetModelInfo("tenant-b/m").status()));
  EXPECT_TRUE(denied(tenant.ListModels().status()));
  EXPECT_TRUE(denied(tenant.ListTensors("tenant-b/").status()));
  EXPECT_TRUE(denied(tenant.RemoveTensor(theirs)));
  EXPECT_TRUE(denied(tenant.RemoveModel("tenant-b/m")));
  EXPECT_TRUE(denied(tenant.PinModel("tenant-b/m")));
  EXPECT_TRUE(denied(tenant.PinModel("tenant-b/m", /*unpin=*/true)));
  // Nor its stripes as plain objects.
  auto stripes = Admin(owner->client()).List(kStripeKeyPrefix, 16384);
  ASSERT_TRUE(stripes.ok()) << stripes.status();
  int others = 0;
  for (const auto& entry : stripes->entries) {
    if (!StripeKeyScope(entry.key).value_or("").starts_with("tenant-b/")) continue;
    ++others;
    EXPECT_TRUE(denied(tenant.client().Get(entry.key).status()));
    EXPECT_TRUE(denied(tenant.client().Remove(entry.key)));
  }
  EXPECT_GT(others, 0);

  // unipoolctl model with the token (--key-file): the same rules.
  std::string ctl = ExecutableDir() + "/unipoolctl";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {ctl, "--directory", cluster_->directory_address(), "--key-file",
                               token_path, "model"});
    return testing::Run(args);
  };
  testing::RunResult listed = run({"ls", "tenant-a/"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("tenant-a/m"), std::string::npos) << listed.out;
  testing::RunResult removed = run({"rm", "tenant-b/m"});
  EXPECT_EQ(removed.exit_code, 1);
  EXPECT_NE(removed.err.find("outside the token's prefix"), std::string::npos) << removed.err;

  // The other tenant's model is untouched and no partial model appeared.
  auto info = owner->GetModelInfo("tenant-b/m");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE(owner->GetTensor(theirs, bias).ok());
  EXPECT_EQ(bias, TensorBytesInFile(file, "model.norm.bias"));
  EXPECT_EQ(owner->ListModels()->size(), 2u);
  EXPECT_TRUE(absl::IsNotFound(owner->GetTensorInfo("tenant-b/t").status()));
}

// Rx queues of node sockets on `port` holding unread bytes (/proc/net/tcp).
bool HasQueuedRequest(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    unsigned local_port = 0, tx = 0, rx = 0;
    if (std::sscanf(line.c_str(), " %*d: %*8x:%x %*8x:%*x %*x %x:%x", &local_port, &tx, &rx) == 3 &&
        static_cast<int>(local_port) == port && rx > 0) {
      return true;
    }
  }
  return false;
}

// With every node stopped, one GetTensor has a request queued at each of
// them: the stripe requests to different nodes are in flight together.
TEST_F(TensorStoreTest, StripeReadsReachAllNodesAtOnce) {
  StartCluster();
  Connect(/*shm=*/false);  // TCP: a stopped node cannot answer
  std::vector<uint8_t> bytes(48 << 20);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i ^ (i >> 12));
  TensorPutOptions put;
  put.stripe_size = 4 << 20;
  ASSERT_TRUE(tensors_->PutTensor("t", "U8", std::vector<uint64_t>{bytes.size()}, bytes, put).ok());
  auto info = tensors_->GetTensorInfo("t");
  ASSERT_TRUE(info.ok());
  std::set<uint32_t> holders;
  for (const TensorStripe& s : info->stripes) holders.insert(s.node_ids[0]);
  ASSERT_EQ(holders.size(), 3u) << "stripes are placed on every node";

  std::vector<int> ports;
  for (int i = 0; i < 3; ++i) {
    std::string address = cluster_->node_address(i);
    ports.push_back(std::stoi(address.substr(address.rfind(':') + 1)));
    ASSERT_EQ(::kill(cluster_->node_pid(i), SIGSTOP), 0);
  }
  std::vector<uint8_t> got(bytes.size());
  absl::StatusOr<uint64_t> read;
  std::thread reader([&] { read = tensors_->GetTensor("t", got); });
  bool all_queued = testing::WaitUntil([&] {
    for (int port : ports) {
      if (!HasQueuedRequest(port)) return false;
    }
    return true;
  });
  for (int i = 0; i < 3; ++i) ::kill(cluster_->node_pid(i), SIGCONT);
  reader.join();
  EXPECT_TRUE(all_queued) << "a request was waiting at every stopped node";
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(got, bytes);
}

}  // namespace
}  // namespace unipool
