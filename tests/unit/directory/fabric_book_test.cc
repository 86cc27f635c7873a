// The directory's book of client fabric reports (directory/fabric_book.h)
// and the report's wire form (common/fabric_codec.h): newest report per
// client, ages, a minute's keep, a bounded number of clients, and peers'
// oversized reports refused.
#include "unipool/directory/fabric_book.h"

#include "gtest/gtest.h"
#include "unipool/common/fabric_codec.h"

namespace unipool {
namespace {

ClientFabric Report(const std::string& host, uint64_t bytes) {
  ClientFabric f;
  f.host = host;
  f.client = "engine";
  RdmaPathStats p;
  p.node_address = "10.77.1.2:7301";
  p.local_port = "rxe_ab:1";
  p.remote_port = "rxe_ab:1";
  p.mode = "rdma-uc";
  p.up = true;
  p.bytes = bytes;
  f.paths.push_back(p);
  f.fallbacks.push_back({"10.77.2.2:7301", "no local port reaches its ports (2 pairs probed)"});
  return f;
}

TEST(FabricBookTest, KeepsTheNewestReportPerClientWithItsAge) {
  FabricBook book;
  absl::Time t = absl::FromUnixSeconds(1000);
  book.Record(Report("mac1", 10), t);
  book.Record(Report("mac2", 20), t);
  book.Record(Report("mac1", 30), t + absl::Seconds(5));
  std::vector<ClientFabric> now = book.Snapshot(t + absl::Seconds(6));
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].host, "mac1");
  EXPECT_EQ(now[0].paths[0].bytes, 30u);
  EXPECT_EQ(now[0].age, absl::Seconds(1));
  EXPECT_EQ(now[1].age, absl::Seconds(6));
  // A client that stopped reporting drops out after a minute.
  now = book.Snapshot(t + absl::Seconds(62));
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].host, "mac1");
}

TEST(FabricBookTest, HoldsABoundedNumberOfClientsDroppingTheOldest) {
  FabricBook book;
  absl::Time t = absl::FromUnixSeconds(1000);
  for (size_t i = 0; i <= FabricBook::kMaxClients; ++i) {
    book.Record(Report("host" + std::to_string(i), i), t + absl::Milliseconds(i));
  }
  std::vector<ClientFabric> now = book.Snapshot(t + absl::Seconds(2));
  EXPECT_EQ(now.size(), FabricBook::kMaxClients);
  for (const ClientFabric& f : now) EXPECT_NE(f.host, "host0");
}

TEST(FabricCodecTest, RoundTripsAndRefusesOversizedReports) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(EncodeFabricReport(fbb, Report("mac1", 42)));
  absl::StatusOr<ClientFabric> back =
      DecodeFabricReport(flatbuffers::GetRoot<wire::FabricReport>(fbb.GetBufferPointer()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->host, "mac1");
  ASSERT_EQ(back->paths.size(), 1u);
  EXPECT_EQ(back->paths[0].bytes, 42u);
  EXPECT_EQ(back->paths[0].local_port, "rxe_ab:1");
  ASSERT_EQ(back->fallbacks.size(), 1u);

  ClientFabric big = Report("mac1", 1);
  big.paths.resize(kMaxFabricEntries + 1, big.paths[0]);
  flatbuffers::FlatBufferBuilder many;
  many.Finish(EncodeFabricReport(many, big));
  EXPECT_EQ(DecodeFabricReport(flatbuffers::GetRoot<wire::FabricReport>(many.GetBufferPointer()))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  ClientFabric long_text = Report(std::string(kMaxFabricTextBytes + 1, 'h'), 1);
  flatbuffers::FlatBufferBuilder text;
  text.Finish(EncodeFabricReport(text, long_text));
  EXPECT_FALSE(
      DecodeFabricReport(flatbuffers::GetRoot<wire::FabricReport>(text.GetBufferPointer())).ok());
}

}  // namespace
}  // namespace unipool
