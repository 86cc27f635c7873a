// The parts of the RDMA transport that need no device: the connection info
// on the wire, MTU and GID choice, splitting of large pages, and the bounded
// retry of transfers a UC fabric may lose. (The verbs paths themselves run
// for real on Soft-RoCE: tests/rdma_vm.)
#include <cstdlib>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "unipool/verbs/qp_info.h"
#include "unipool/verbs/verbs_library.h"

namespace unipool {
namespace {

Gid MakeGid(std::initializer_list<uint8_t> tail, bool v4_mapped) {
  Gid g{};
  if (v4_mapped) {
    g[10] = 0xff;
    g[11] = 0xff;
  } else {
    g[0] = 0xfe;
    g[1] = 0x80;
  }
  int i = 12;
  for (uint8_t b : tail) g[i++] = b;
  return g;
}

TEST(QpEndpointTest, RoundTripsThroughTheWire) {
  QpEndpoint e;
  e.qp_num = 0x123456;
  e.psn = 0xabcdef;
  e.lid = 7;
  e.gid = MakeGid({192, 0, 2, 1}, true);
  e.mtu = IBV_MTU_4096;
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(EndpointToWire(fbb, e));
  auto* wire = flatbuffers::GetRoot<wire::RdmaEndpoint>(fbb.GetBufferPointer());
  auto back = EndpointFromWire(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, e);
}

TEST(QpEndpointTest, MalformedEndpointsAreRefused) {
  auto decode = [](auto build) {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(build(fbb));
    return EndpointFromWire(flatbuffers::GetRoot<wire::RdmaEndpoint>(fbb.GetBufferPointer()));
  };
  // GID of 4 bytes.
  auto short_gid = decode([](flatbuffers::FlatBufferBuilder& fbb) {
    std::vector<uint8_t> gid(4, 1);
    return wire::CreateRdmaEndpoint(fbb, 1, 1, 0, fbb.CreateVector(gid), IBV_MTU_1024);
  });
  EXPECT_EQ(short_gid.status().code(), absl::StatusCode::kInvalidArgument);
  // MTU code 9.
  auto bad_mtu = decode([](flatbuffers::FlatBufferBuilder& fbb) {
    std::vector<uint8_t> gid(16, 1);
    return wire::CreateRdmaEndpoint(fbb, 1, 1, 0, fbb.CreateVector(gid), 9);
  });
  EXPECT_EQ(bad_mtu.status().code(), absl::StatusCode::kInvalidArgument);
  // PSN over 24 bits.
  auto bad_psn = decode([](flatbuffers::FlatBufferBuilder& fbb) {
    std::vector<uint8_t> gid(16, 1);
    return wire::CreateRdmaEndpoint(fbb, 1, 1u << 24, 0, fbb.CreateVector(gid), IBV_MTU_1024);
  });
  EXPECT_EQ(bad_psn.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EndpointFromWire(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MtuTest, BothEndsUseTheSmallerMtu) {
  EXPECT_EQ(NegotiateMtu(IBV_MTU_4096, IBV_MTU_1024), IBV_MTU_1024);  // RoCE NIC <-> Mac
  EXPECT_EQ(NegotiateMtu(IBV_MTU_1024, IBV_MTU_4096), IBV_MTU_1024);
  EXPECT_EQ(NegotiateMtu(IBV_MTU_2048, IBV_MTU_2048), IBV_MTU_2048);
  EXPECT_EQ(MtuBytes(IBV_MTU_256), 256);
  EXPECT_EQ(MtuBytes(IBV_MTU_1024), 1024);
  EXPECT_EQ(MtuBytes(IBV_MTU_4096), 4096);
}

TEST(GidTest, PrefersTheIpv4MappedGid) {
  // Soft-RoCE on a veth with 192.0.2.1: index 0 link-local, index 1 mapped.
  std::vector<Gid> table = {MakeGid({0xaa, 0xbb, 0xcc, 0xdd}, false),
                            MakeGid({192, 0, 2, 1}, true)};
  EXPECT_EQ(ChooseGidIndex(table), 1);
  EXPECT_EQ(FormatGid(table[1]), "::ffff:192.0.2.1");
  // No IPv4 address yet (a Thunderbolt port before link-local IPv4): the
  // first non-zero GID.
  std::vector<Gid> no_v4 = {Gid{}, MakeGid({1, 2, 3, 4}, false)};
  EXPECT_EQ(ChooseGidIndex(no_v4), 1);
  std::vector<Gid> empty = {Gid{}, Gid{}};
  EXPECT_EQ(ChooseGidIndex(empty), -1);
  EXPECT_TRUE(IsIpv4MappedGid(table[1]));
  EXPECT_FALSE(IsIpv4MappedGid(table[0]));
}

TEST(SplitTest, LargePagesAreCutToTheMessageSize) {
  auto pieces = SplitTransfer(80ull << 20, 1ull << 30);
  ASSERT_EQ(pieces.size(), 1u);  // fits in one message on Linux NICs
  pieces = SplitTransfer((80ull << 20) + 5, 8ull << 20);
  ASSERT_EQ(pieces.size(), 11u);
  uint64_t covered = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].offset, covered);
    EXPECT_LE(pieces[i].length, 8ull << 20);
    covered += pieces[i].length;
  }
  EXPECT_EQ(covered, (80ull << 20) + 5);
  EXPECT_EQ(pieces.back().length, 5u);
  EXPECT_TRUE(SplitTransfer(0, 4096).empty());
}

TEST(UcRetryTest, LossesBelowTheBoundAreRetriedUntilSuccess) {
  for (int losses = 0; losses < 4; ++losses) {
    int calls = 0;
    absl::Status s = RetryLostTransfers(4, [&](int attempt) {
      EXPECT_EQ(attempt, calls + 1);
      ++calls;
      return calls <= losses ? absl::DataLossError("lost") : absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(calls, losses + 1);
  }
}

TEST(UcRetryTest, MissingCompletionsAreRetriedToo) {
  int calls = 0;
  absl::Status s = RetryLostTransfers(3, [&](int) {
    return ++calls < 3 ? absl::DeadlineExceededError("no immediate") : absl::OkStatus();
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
}

TEST(UcRetryTest, PersistentLossGivesUpWithDataLoss) {
  int calls = 0;
  absl::Status s = RetryLostTransfers(4, [&](int) {
    ++calls;
    return absl::DataLossError("lost");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("4 times"), std::string::npos) << s;
  EXPECT_EQ(calls, 4);
}

TEST(UcRetryTest, OtherErrorsAreNotRetried) {
  int calls = 0;
  absl::Status s = RetryLostTransfers(4, [&](int) {
    ++calls;
    return absl::UnavailableError("QP in error state");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

TEST(VerbsLibraryTest, ResolvesEveryEntryPointOfRdmaCore) {
  // scripts/setup.sh installs rdma-core's libibverbs; the loader must find
  // it and every symbol unipool uses.
  auto api = LoadVerbs();
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_NE((*api)->get_device_list, nullptr);
  EXPECT_NE((*api)->reg_mr, nullptr);
  EXPECT_NE((*api)->modify_qp, nullptr);
}

TEST(VerbsLibraryTest, AMissingLibraryIsAClearError) {
  // LoadVerbs caches its answer, so ask in a freshly executed child.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ASSERT_EXIT(
      {
        setenv("UNIPOOL_VERBS_LIBRARY", "/nonexistent/librdma.dylib", 1);
        auto api = LoadVerbs();
        bool clear = !api.ok() && api.status().code() == absl::StatusCode::kFailedPrecondition &&
                     api.status().message().find("no verbs library") != std::string::npos;
        std::exit(clear ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace unipool
