// Question 4, model weights in the pool (--model): how fast is a
// safetensors model loaded into the pool and read back whole, over shm and
// TCP, next to reading the same file from local disk with the page cache
// warm and to memcpy, in the same run? And does a tensor striped over three
// nodes read faster than the same tensor held on one? Output: one
// `model op=... transport=...` line per measurement, with ratios against
// the baselines (disk, memcpy; one-node for the striped read).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "measure.h"
#include "peers.h"
#include "questions.h"
#include "unipool/common/units.h"
#include "unipool/tensor.h"
#include "unipool/tensor/safetensors.h"

ABSL_DECLARE_FLAG(int, nodes);
ABSL_FLAG(bool, quick, false,
          "--model: a 256 MiB model and a 128 MiB striped tensor (else 2 GiB and 512 MiB)");

namespace unipool::bench {
namespace {

// A BF16 [8192, 4096] weight: 64 MiB, one default stripe.
constexpr uint64_t kRows = 8192, kCols = 4096, kTensorBytes = kRows * kCols * 2;

struct Sizes {
  int tensors;       // of kTensorBytes: 32 make a 2 GiB model
  uint64_t striped;  // bytes of the striped-read tensor
  uint64_t stripe;   // its stripe size when striped
};

Sizes SizesOfRun() {
  return absl::GetFlag(FLAGS_quick) ? Sizes{4, 128ull << 20, 16ull << 20}
                                    : Sizes{32, 512ull << 20, 64ull << 20};
}

// Writes the model: deterministic bytes, a different pattern per tensor.
std::string WriteModel(const std::string& dir, int tensors) {
  std::vector<SafetensorsTensor> list;
  for (int i = 0; i < tensors; ++i) {
    list.push_back({.name = absl::StrFormat("model.layers.%d.mlp.weight", i),
                    .dtype = "BF16",
                    .shape = {kRows, kCols}});
  }
  SafetensorsHeader header = OrDie(BuildSafetensorsHeader(list, {{"source", "unipool-bench"}}),
                                   "building the model's header");
  std::string path = dir + "/bench-model.safetensors";
  OkOrDie(
      WriteSafetensorsFile(path, header,
                           [](const SafetensorsTensor& t, uint64_t offset, std::span<uint8_t> out) {
                             uint64_t seed = std::hash<std::string>{}(t.name);
                             for (size_t i = 0; i < out.size(); ++i) {
                               out[i] = static_cast<uint8_t>((offset + i) * 131 + seed);
                             }
                             return absl::OkStatus();
                           }),
      "writing " + path);
  return path;
}

// The file's tensor data read into `out` with pread (the disk baseline).
void ReadFile(const std::string& path, uint64_t data_offset, std::span<uint8_t> out) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) Fail("opening " + path);
  for (uint64_t done = 0; done < out.size();) {
    ssize_t n = ::pread(fd, out.data() + done, std::min<uint64_t>(out.size() - done, 64 << 20),
                        static_cast<off_t>(data_offset + done));
    if (n <= 0) Fail("reading " + path);
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
}

// Seconds of the faster of two runs of `body`.
double BestOfTwo(const std::function<void()>& body) {
  double best = 1e300;
  for (int round = 0; round < 2; ++round) {
    Clock::time_point start = Clock::now();
    body();
    best = std::min(best, SecondsSince(start));
  }
  return best;
}

void PrintLine(const std::string& op, const std::string& transport, uint64_t bytes, double seconds,
               const std::string& ratios) {
  absl::PrintF("model op=%s transport=%s bytes=%u seconds=%.3f GBps=%.3f%s\n", op, transport, bytes,
               seconds, bytes / seconds / 1e9, ratios);
  std::fflush(stdout);
}

struct Baselines {
  double disk_GBps = 0;
  double memcpy_GBps = 0;
  std::string Ratios(uint64_t bytes, double seconds) const {
    double gbps = bytes / seconds / 1e9;
    return absl::StrFormat(" vs_disk=%.2f vs_memcpy=%.2f", gbps / disk_GBps, gbps / memcpy_GBps);
  }
};

// Every tensor of the model read in file order into `out` (what an engine
// does at start), each straight into its place.
void ReadModel(TensorClient& tensors, const SafetensorsHeader& header, std::span<uint8_t> out) {
  for (const SafetensorsTensor& t : header.tensors) {
    OrDie(tensors.GetTensor("bench/" + t.name, out.subspan(t.begin, t.bytes())),
          "reading " + t.name);
  }
}

// Load over each transport (the model removed in between), then the whole
// model read over each, against disk and memcpy.
void LoadAndRead(const Peers& peers, const std::string& path, const Baselines& base,
                 std::vector<uint8_t>& file_data) {
  SafetensorsHeader header = OrDie(ReadSafetensorsFile(path), "parsing " + path).header;
  const uint64_t bytes = header.data_bytes();
  std::vector<uint8_t> out(bytes);
  for (std::string transport : {"tcp", "shm"}) {  // shm's load stays for the reads
    auto tensors = OrDie(TensorClient::Connect(peers.Options(transport)), "connecting");
    (void)tensors->RemoveModel("bench");
    Clock::time_point start = Clock::now();
    OkOrDie(tensors->LoadModel(path, "bench"), "loading the model over " + std::string(transport));
    double seconds = SecondsSince(start);
    PrintLine("load", transport, bytes, seconds, base.Ratios(bytes, seconds));
  }
  for (std::string transport : {"shm", "tcp"}) {
    auto tensors = OrDie(TensorClient::Connect(peers.Options(transport)), "connecting");
    std::fill(out.begin(), out.end(), 0);
    ReadModel(*tensors, header, out);  // untimed: every byte checked
    if (out != file_data) Fail("the model read back differs from the file");
    double seconds = BestOfTwo([&] { ReadModel(*tensors, header, out); });
    PrintLine("read-model", transport, bytes, seconds, base.Ratios(bytes, seconds));
  }
  auto tensors = OrDie(TensorClient::Connect(peers.Options("shm")), "connecting");
  OkOrDie(tensors->RemoveModel("bench"), "removing the model");
}

// Distinct nodes holding the first copies of a tensor's stripes.
size_t NodesOf(TensorClient& tensors, const std::string& name) {
  TensorInfo info = OrDie(tensors.GetTensorInfo(name), "info of " + name);
  std::set<uint32_t> nodes;
  for (const TensorStripe& s : info.stripes) nodes.insert(s.node_ids.at(0));
  return nodes.size();
}

// The same bytes as one stripe (one node) and as stripes over the nodes.
void StripedVersusOneNode(const Peers& peers, const Sizes& sizes) {
  std::vector<uint8_t> bytes(sizes.striped), out(sizes.striped);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + (i >> 16));
  std::vector<uint64_t> shape = {bytes.size()};
  auto writer = OrDie(TensorClient::Connect(peers.Options("shm")), "connecting");
  // Striped first, while the nodes are equally free: its stripes spread
  // over all of them.
  OkOrDie(writer->PutTensor("bench/striped", "U8", shape, bytes, {.stripe_size = sizes.stripe}),
          "putting the striped tensor");
  OkOrDie(writer->PutTensor("bench/one-node", "U8", shape, bytes, {.stripe_size = bytes.size()}),
          "putting the one-node tensor");
  size_t one = NodesOf(*writer, "bench/one-node"), striped = NodesOf(*writer, "bench/striped");
  for (std::string transport : {"shm", "tcp"}) {
    auto tensors = OrDie(TensorClient::Connect(peers.Options(transport)), "connecting");
    double seconds[2];
    int i = 0;
    for (const char* name : {"bench/one-node", "bench/striped"}) {
      OrDie(tensors->GetTensor(name, out), name);
      if (out != bytes) Fail(std::string(name) + " read back differs");
      seconds[i++] = BestOfTwo([&] { OrDie(tensors->GetTensor(name, out), name); });
    }
    PrintLine("read-one-node", transport, bytes.size(), seconds[0],
              absl::StrFormat(" nodes=%d", one));
    PrintLine("read-striped", transport, bytes.size(), seconds[1],
              absl::StrFormat(" nodes=%d stripe=%u vs_one_node=%.2f", striped, sizes.stripe,
                              seconds[0] / seconds[1]));
  }
  (void)writer->RemoveTensor("bench/one-node");
  (void)writer->RemoveTensor("bench/striped");
}

}  // namespace

int RunModel() {
  // Striping needs nodes to stripe over.
  if (absl::GetFlag(FLAGS_nodes) < 3) absl::SetFlag(&FLAGS_nodes, 3);
  Sizes sizes = SizesOfRun();
  const uint64_t model_bytes = sizes.tensors * kTensorBytes;
  // Peers sizes the pool at 8x this over the nodes: 1.33x the model and
  // both striped-read tensors, below the eviction threshold (90%) even
  // while a removed model's stripes stay leased for 2 s.
  Peers peers((model_bytes + 2 * sizes.striped) / 6);
  std::string path = WriteModel(peers.work_dir(), sizes.tensors);
  uint64_t data_offset = OrDie(ReadSafetensorsFile(path), "parsing " + path).header.data_offset;
  absl::PrintF("model file=%s tensors=%d bytes=%u nodes=%d\n", FormatSize(model_bytes),
               sizes.tensors, model_bytes, absl::GetFlag(FLAGS_nodes));

  // Baselines: the file from the page cache (warmed by one untimed read),
  // and memcpy of the same bytes.
  std::vector<uint8_t> file_data(model_bytes), copy(model_bytes);
  ReadFile(path, data_offset, file_data);
  Baselines base;
  double disk_s = BestOfTwo([&] { ReadFile(path, data_offset, copy); });
  base.disk_GBps = model_bytes / disk_s / 1e9;
  PrintLine("read-file", "page-cache", model_bytes, disk_s, "");
  double memcpy_s = BestOfTwo([&] { std::memcpy(copy.data(), file_data.data(), model_bytes); });
  base.memcpy_GBps = model_bytes / memcpy_s / 1e9;
  PrintLine("memcpy", "memory", model_bytes, memcpy_s, "");
  copy = {};

  StripedVersusOneNode(peers, sizes);  // first: on an empty pool, stripes spread evenly
  LoadAndRead(peers, path, base, file_data);
  return 0;
}

}  // namespace unipool::bench
