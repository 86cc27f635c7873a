// RDMA path logic without a device (transport/verbs/path_plan.h, and the
// port's wire form in common/rdma_port.h): which port pairs are probed and
// in what order, how a batch and a large value are spread over paths, and
// when a failed path is tried again. The paths themselves run for real on a
// Soft-RoCE mesh: tests/rdma_vm.
#include "unipool/verbs/path_plan.h"

#include <numeric>

#include "gtest/gtest.h"
#include "unipool/common/rdma_port.h"

namespace unipool {
namespace {

RdmaPortInfo Port(const char* device, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t prefix,
                  uint32_t rate = 0) {
  RdmaPortInfo p;
  p.device = device;
  p.gid[10] = p.gid[11] = 0xff;
  p.gid[12] = a;
  p.gid[13] = b;
  p.gid[14] = c;
  p.gid[15] = d;
  p.ipv4_prefix = prefix;
  p.mtu = 3;
  p.rc = true;
  p.rate_mbps = rate;
  p.active = true;
  return p;
}

TEST(RdmaPortTest, RoundTripsThroughTheWireAndFormats) {
  RdmaPortInfo p = Port("rdma_en2", 10, 77, 1, 2, 30, 80000);
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(RdmaPortToWire(fbb, p));
  auto* w = flatbuffers::GetRoot<wire::RdmaPort>(fbb.GetBufferPointer());
  absl::StatusOr<RdmaPortInfo> back = RdmaPortFromWire(w);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(SubnetText(p), "10.77.1.0/30");
  EXPECT_EQ(FormatGid(p.gid), "::ffff:10.77.1.2");
  EXPECT_EQ(PortName(p), "rdma_en2:1");
  p.ipv4_prefix = 0;
  EXPECT_EQ(SubnetText(p), "");
}

TEST(RdmaPortTest, MalformedPortsFromAPeerAreRefused) {
  auto decode = [](auto build) {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(build(fbb));
    return RdmaPortFromWire(flatbuffers::GetRoot<wire::RdmaPort>(fbb.GetBufferPointer()));
  };
  auto gid16 = [](flatbuffers::FlatBufferBuilder& fbb) {
    return fbb.CreateVector(std::vector<uint8_t>(16));
  };
  EXPECT_FALSE(decode([&](auto& fbb) {
                 return wire::CreateRdmaPort(fbb, fbb.CreateString("x"), 1,
                                             fbb.CreateVector(std::vector<uint8_t>(15)), 0, 3);
               }).ok());
  EXPECT_FALSE(decode([&](auto& fbb) {
                 return wire::CreateRdmaPort(fbb, fbb.CreateString("x"), 1, gid16(fbb), 33, 3);
               }).ok());
  EXPECT_FALSE(decode([&](auto& fbb) {
                 return wire::CreateRdmaPort(fbb, fbb.CreateString("x"), 1, gid16(fbb), 0, 9);
               }).ok());
  EXPECT_FALSE(decode([&](auto& fbb) {
                 return wire::CreateRdmaPort(fbb, fbb.CreateString("x"), 0, gid16(fbb), 0, 3);
               }).ok());
  EXPECT_FALSE(decode([&](auto& fbb) {
                 return wire::CreateRdmaPort(fbb, fbb.CreateString(std::string(65, 'd')), 1,
                                             gid16(fbb), 0, 3);
               }).ok());
  EXPECT_TRUE(decode([&](auto& fbb) {
                return wire::CreateRdmaPort(fbb, fbb.CreateString("x"), 1, gid16(fbb), 0, 3);
              }).ok());
}

TEST(PathPlanTest, SameSubnetNeedsBothAddressesInsideTheOthersPrefix) {
  EXPECT_TRUE(SameSubnet(Port("a", 10, 77, 1, 1, 30), Port("b", 10, 77, 1, 2, 30)));
  EXPECT_FALSE(SameSubnet(Port("a", 10, 77, 1, 1, 30), Port("b", 10, 77, 2, 2, 30)));
  EXPECT_FALSE(SameSubnet(Port("a", 10, 77, 1, 1, 0), Port("b", 10, 77, 1, 2, 30)));
  // Every Thunderbolt port is link-local: all look alike, the probe decides.
  EXPECT_TRUE(SameSubnet(Port("a", 169, 254, 3, 1, 16), Port("b", 169, 254, 9, 9, 16)));
}

// A full mesh seen from machine a: cable ab on 10.77.1/30, ac on 10.77.2/30,
// bc on 10.77.3/30. Node b's ports are b's ends of ab and bc.
TEST(PathPlanTest, TheFallbackAvoidsTheAddressesOfCablesOutOfUse) {
  // Node b advertises its a-b cable address, its b-c cable address, then
  // Ethernet; the a-b cable (10.77.1.0/30, b's end .2) was pulled.
  const std::string advertised = "10.77.1.2:7000,10.77.3.1:7000,192.168.5.20:7000";
  RdmaPortInfo ab = Port("rxe_ab", 10, 77, 1, 2, 30);
  EXPECT_EQ(AddressesAvoiding(advertised, {&ab, 1}), "10.77.3.1:7000,192.168.5.20:7000");
  EXPECT_EQ(AddressesAvoiding(advertised, {}), advertised);
  // A prefix unknown: only the port's own address goes.
  RdmaPortInfo no_prefix = Port("rxe_ab", 10, 77, 3, 2, 0);
  EXPECT_EQ(AddressesAvoiding(advertised, {&no_prefix, 1}), advertised);
  no_prefix = Port("rxe_ab", 10, 77, 3, 1, 0);
  EXPECT_EQ(AddressesAvoiding(advertised, {&no_prefix, 1}), "10.77.1.2:7000,192.168.5.20:7000");
  // Every address on a cable out of use: all of them rather than none.
  EXPECT_EQ(AddressesAvoiding("10.77.1.2:7000", {&ab, 1}), "10.77.1.2:7000");
  // Host names are kept; a port without an IPv4-mapped GID drops nothing.
  EXPECT_EQ(AddressesAvoiding("node-b:7000,10.77.1.2:7000", {&ab, 1}), "node-b:7000");
  RdmaPortInfo roce;
  roce.gid[0] = 0xfe;
  roce.gid[1] = 0x80;
  EXPECT_EQ(AddressesAvoiding(advertised, {&roce, 1}), advertised);
}

// Node b's link to the directory on a: over a's end of cable a-b (its own
// port there is down), or over the Ethernet.
TEST(PathPlanTest, AnAddressIsOnAPortWhenOnItsSubnet) {
  RdmaPortInfo ab = Port("rxe_ab", 10, 77, 1, 2, 30);
  EXPECT_TRUE(AddressOnPorts("10.77.1.1:7300", {&ab, 1}));
  EXPECT_TRUE(AddressOnPorts("10.77.1.2:7300", {&ab, 1}));
  EXPECT_FALSE(AddressOnPorts("10.77.1.5:7300", {&ab, 1})) << "the next /30";
  EXPECT_FALSE(AddressOnPorts("10.78.0.1:7300", {&ab, 1}));
  EXPECT_FALSE(AddressOnPorts("directory:7300", {&ab, 1}));
  EXPECT_FALSE(AddressOnPorts("10.77.1.1:7300", {}));
}

TEST(PathPlanTest, ALinkLeavesAnAddressOnADownPortForTheOthers) {
  const std::string directory = "10.77.1.1:7300,10.78.0.1:7300";
  RdmaPortInfo ab = Port("rxe_ab", 10, 77, 1, 2, 30);
  RdmaPortInfo bc = Port("rxe_bc", 10, 77, 3, 1, 30);
  ab.active = bc.active = true;
  std::vector<RdmaPortInfo> ports = {ab, bc};
  EXPECT_EQ(AddressesOffDownPorts("10.77.1.1:7300", directory, ports), "") << "its port is up";
  ports[0].active = false;  // cable a-b pulled
  EXPECT_EQ(AddressesOffDownPorts("10.77.1.1:7300", directory, ports), "10.78.0.1:7300");
  EXPECT_EQ(AddressesOffDownPorts("10.78.0.1:7300", directory, ports), "") << "not on the cable";
  EXPECT_EQ(AddressesOffDownPorts("10.77.1.1:7300", "10.77.1.1:7300", ports), "")
      << "no other way to the directory: stay";
  EXPECT_EQ(AddressesOffDownPorts("10.77.1.1:7300", directory, {}), "");
}

TEST(PathPlanTest, CandidatesPutTheCableSubnetFirstAndSkipInactivePorts) {
  std::vector<RdmaPortInfo> local = {Port("rxe_ab", 10, 77, 1, 1, 30),
                                     Port("rxe_ac", 10, 77, 2, 1, 30)};
  std::vector<RdmaPortInfo> node_b = {Port("rxe_bc", 10, 77, 3, 1, 30),
                                      Port("rxe_ab", 10, 77, 1, 2, 30)};
  std::vector<PathCandidate> c = CandidatePaths(local, node_b, false);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0], (PathCandidate{0, 1, true}));
  for (size_t i = 1; i < c.size(); ++i) EXPECT_FALSE(c[i].same_subnet);
  node_b[1].active = false;  // a's cable to b pulled
  c = CandidatePaths(local, node_b, false);
  EXPECT_EQ(c.size(), 2u);
  for (const PathCandidate& p : c) EXPECT_EQ(p.remote, 0u);
  local[0].rc = false;
  EXPECT_EQ(CandidatePaths(local, node_b, /*need_rc=*/true).size(), 1u);
}

TEST(PathPlanTest, ChoosePathsUsesEachPortOnceAndOnlyWhatTheProbeReaches) {
  // Two cables between a and b, link-local (every pair looks alike): the
  // probe says which local port reaches which remote one.
  std::vector<RdmaPortInfo> local = {Port("en2", 169, 254, 1, 1, 16),
                                     Port("en3", 169, 254, 2, 1, 16)};
  std::vector<RdmaPortInfo> remote = {Port("en5", 169, 254, 2, 2, 16),
                                      Port("en4", 169, 254, 1, 2, 16)};
  std::vector<PathCandidate> c = CandidatePaths(local, remote, false);
  int probes = 0;
  std::vector<PathCandidate> chosen =
      ChoosePaths(std::span<const PathCandidate>(c), [&](const PathCandidate& p) {
        ++probes;
        return (p.local == 0 && p.remote == 1) || (p.local == 1 && p.remote == 0);
      });
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0], (PathCandidate{0, 1, true}));
  EXPECT_EQ(chosen[1], (PathCandidate{1, 0, true}));
  EXPECT_EQ(probes, 3);  // (0,0) fails, (0,1) holds, (1,0) holds; (1,1) never probed
}

TEST(PathPlanTest, SpreadBalancesBytesByRateAndQueue) {
  std::vector<uint64_t> items(8, 256 << 10);
  std::vector<PathLoad> equal = {{80000, 0}, {80000, 0}};
  std::vector<size_t> a = SpreadOverPaths(items, equal);
  EXPECT_EQ(std::count(a.begin(), a.end(), 0u), 4);
  std::vector<PathLoad> fast_slow = {{100000, 0}, {25000, 0}};
  a = SpreadOverPaths(items, fast_slow);
  // A fifth of the rate: 7 + 1 finishes at 7 units, 6 + 2 at 8.
  EXPECT_EQ(std::count(a.begin(), a.end(), 1u), 1);
  std::vector<PathLoad> busy = {{80000, 4u << 20}, {80000, 0}};
  a = SpreadOverPaths(items, busy);
  EXPECT_EQ(std::count(a.begin(), a.end(), 1u), 8);  // the idle path takes all
  std::vector<PathLoad> unknown = {{0, 0}, {0, 0}};
  a = SpreadOverPaths(items, unknown);
  EXPECT_EQ(std::count(a.begin(), a.end(), 0u), 4);
  EXPECT_EQ(SpreadOverPaths(items, std::vector<PathLoad>{{0, 0}}), std::vector<size_t>(8, 0));
}

TEST(PathPlanTest, SplitCutsALargeValueByRateAtPageBoundaries) {
  std::vector<PathLoad> paths = {{80000, 0}, {40000, 0}};
  std::vector<PathPiece> pieces = SplitOverPaths(12u << 20, paths, 4u << 20, 4096);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].path, 0u);
  EXPECT_EQ(pieces[0].offset, 0u);
  EXPECT_EQ(pieces[0].length % 4096, 0u);
  EXPECT_EQ(pieces[0].length, 8u << 20);
  EXPECT_EQ(pieces[1].offset, pieces[0].length);
  EXPECT_EQ(pieces[0].length + pieces[1].length, 12u << 20);
  // Small values, or one path, stay whole on the fastest path.
  pieces = SplitOverPaths(1u << 20, paths, 4u << 20, 4096);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].length, 1u << 20);
  pieces = SplitOverPaths(12345679, std::vector<PathLoad>{{0, 0}, {0, 0}, {0, 0}}, 1, 4096);
  uint64_t total = 0;
  for (const PathPiece& p : pieces) total += p.length;
  EXPECT_EQ(total, 12345679u);
}

TEST(PathPlanTest, AFailedPathWaitsLongerEachTimeUpToTenSeconds) {
  PathBackoff b;
  absl::Time t = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(b.MayRetry(t));
  EXPECT_FALSE(b.down());
  b.Failed(t);
  EXPECT_TRUE(b.down());
  EXPECT_FALSE(b.MayRetry(t + absl::Milliseconds(999)));
  EXPECT_TRUE(b.MayRetry(t + absl::Seconds(1)));
  for (int i = 0; i < 10; ++i) b.Failed(t);
  EXPECT_FALSE(b.MayRetry(t + absl::Seconds(9)));
  EXPECT_TRUE(b.MayRetry(t + absl::Seconds(10)));
  b.Succeeded();
  EXPECT_FALSE(b.down());
}

}  // namespace
}  // namespace unipool
