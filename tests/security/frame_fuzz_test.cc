// A bounded mutation fuzzer against both servers' frame handling: valid
// requests of every kind each server serves, mutated (bytes flipped, sizes
// changed, frames cut or spliced), sent after a Hello (and Hellos mutated
// before it). Neither server may crash or stop serving: a normal client keeps
// working throughout.
#include <sys/socket.h>

#include <filesystem>
#include <random>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/client.h"
#include "unipool/testing/raw_peer.h"
#include "unipool/testing/test_pages.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Frame(const flatbuffers::FlatBufferBuilder& fbb, uint64_t payload_bytes = 0) {
  Bytes frame = testing::Header(kFrameMagic, fbb.GetSize(), payload_bytes);
  frame.insert(frame.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  frame.resize(frame.size() + payload_bytes, 0x5a);
  return frame;
}

template <typename Build>
Bytes Make(Build build, uint64_t payload_bytes = 0) {
  flatbuffers::FlatBufferBuilder fbb;
  build(fbb);
  return Frame(fbb, payload_bytes);
}

// One valid frame of each request kind either server serves.
std::vector<Bytes> Seeds() {
  std::vector<std::string_view> keys = {"fuzz/a", "alive-249", "fuzz/b"};
  // Near the slab's end, away from what the client stores (this pool has no
  // key, so a Write is a legitimate request; only the fuzzer's bytes change).
  std::vector<wire::Range> ranges = {wire::Range(15 << 20, 64),
                                     wire::Range((15 << 20) + 4096, 128)};
  std::vector<Bytes> seeds;
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    std::vector<flatbuffers::Offset<wire::PutStartItem>> items = {
        wire::CreatePutStartItem(fbb, fbb.CreateVector<uint8_t>({'f', '/', '1'}), 4096)};
    FinishMessage(fbb, wire::CreatePutStart(fbb, fbb.CreateVector(items)));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    std::vector<flatbuffers::Offset<wire::PutCommitItem>> items = {
        wire::CreatePutCommitItem(fbb, 1, 2)};
    FinishMessage(fbb, wire::CreatePutCommit(fbb, fbb.CreateVector(items)));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateLookup(fbb, BuildKeyList(fbb, keys)));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateExists(fbb, BuildKeyList(fbb, keys)));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    std::vector<std::string_view> fuzz_only = {"fuzz/a"};
    FinishMessage(fbb, wire::CreateRemove(fbb, BuildKeyList(fbb, fuzz_only)));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateGetStatus(fbb));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateList(fbb, fbb.CreateVector<uint8_t>({'f'}), 0, 10));
  }));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateRead(fbb, fbb.CreateVectorOfStructs(ranges)));
  }));
  seeds.push_back(Make(
      [&](flatbuffers::FlatBufferBuilder& fbb) {
        FinishMessage(fbb, wire::CreateWrite(fbb, fbb.CreateVectorOfStructs(ranges)));
      },
      192));
  seeds.push_back(Make([&](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateChecksum(fbb, fbb.CreateVectorOfStructs(ranges)));
  }));
  return seeds;
}

Bytes Mutate(Bytes frame, std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0:  // flip a few bytes of the meta
      for (int i = 0, n = 1 + rng() % 8; i < n && frame.size() > kFrameHeaderBytes; ++i) {
        frame[kFrameHeaderBytes + rng() % (frame.size() - kFrameHeaderBytes)] ^= 1 << (rng() % 8);
      }
      break;
    case 1:  // any byte at all, header included
      frame[rng() % frame.size()] = static_cast<uint8_t>(rng());
      break;
    case 2:  // cut short
      frame.resize(rng() % frame.size());
      break;
    case 3:  // random bytes inserted in the middle
      frame.insert(frame.begin() + rng() % frame.size(), 1 + rng() % 32,
                   static_cast<uint8_t>(rng()));
      break;
    default:  // overwrite a 4- or 8-byte field with an extreme value
      if (frame.size() > 8) {
        size_t at = rng() % (frame.size() - 8);
        uint64_t extreme = rng() % 2 ? ~0ull : (1ull << (rng() % 63));
        std::memcpy(frame.data() + at, &extreme, rng() % 2 ? 4 : 8);
      }
      break;
  }
  return frame;
}

TEST(FrameFuzzTest, MutatedFramesNeverStopEitherServer) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 16 << 20;
  options.work_dir =
      (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-fuzz-%d", getpid()))
          .string();
  std::filesystem::remove_all(options.work_dir);
  auto cluster = LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ClientOptions client_options;
  client_options.directory = (*cluster)->directory_address();
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();

  const std::vector<Bytes> seeds = Seeds();
  Bytes hello = Make([](flatbuffers::FlatBufferBuilder& fbb) {
    FinishMessage(fbb, wire::CreateHello(fbb, kProtocolVersion, wire::Role::Client));
  });
  std::mt19937_64 rng(12);
  const std::string servers[] = {(*cluster)->directory_address(), (*cluster)->node_address(0)};
  constexpr int kRounds = 1500;  // per server; a few seconds on loopback
  for (int round = 0; round < kRounds; ++round) {
    for (const std::string& server : servers) {
      testing::RawPeer peer(server);
      if (rng() % 8 == 0) {
        peer.Send(Mutate(hello, rng));
      } else {
        peer.Send(hello);
        peer.Send(Mutate(seeds[rng() % seeds.size()], rng));
      }
      peer.HalfClose();  // the server sees the end of whatever it waits for
      EXPECT_TRUE(peer.Closed()) << server << " round " << round;
    }
    if (round % 250 == 249) {
      std::string key = absl::StrFormat("alive-%d", round);
      ASSERT_TRUE((*client)->Put(key, testing::PageBytes(key, 8192)).ok()) << round;
      ASSERT_EQ(*(*client)->Get(key), testing::PageBytes(key, 8192)) << round;
    }
  }
  client->reset();
  std::string dir = (*cluster)->work_dir();
  cluster->reset();
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace unipool
