// Write capabilities end at commit or abort, attacked by real processes on
// loopback in a pool with a cluster key: tenant a keeps the write capability
// of its put after committing it; once its object is evicted and tenant b's
// object lands in the same range, the node refuses a's capability and b's
// bytes stay intact. An aborted put's capability is refused the same way.
#include <vector>

#include "gtest/gtest.h"
#include "unipool/common/checksum.h"
#include "unipool/testing/keyed_cluster.h"
#include "unipool/testing/raw_requests.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

using testing::RawReservation;

constexpr uint64_t kBytes = 4096;
constexpr uint64_t kClientA = 0x1a;
constexpr char kEnded[] = "its capability ended when its put was committed or aborted";

class WriteRevocationTest : public testing::KeyedClusterTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartKeyedCluster("revoke", OneTcpNode())); }

  // A write of `bytes` with `r`'s capability, on a connection of its own
  // (a client drops a connection after an error reply).
  absl::Status WriteWith(const RawReservation& r, std::span<const uint8_t> bytes) {
    auto node = Open(r.node_address, Token(wire::Role::Client, "a/"));
    if (node == nullptr) return absl::UnavailableError("cannot connect to " + r.node_address);
    return testing::RawWrite(*node, r.offset, bytes, &r.capability);
  }
  // Whether the node comes to refuse writes with `r`'s capability (the
  // directory revokes it from a thread of its own, just after).
  bool BecomesRefused(const RawReservation& r, std::span<const uint8_t> bytes) {
    return testing::WaitUntil(
        [&] { return WriteWith(r, bytes).code() == absl::StatusCode::kPermissionDenied; },
        absl::Seconds(10));
  }
};

TEST_F(WriteRevocationTest, ACommittedPutsCapabilityCannotWriteIntoAnotherTenantsObject) {
  auto directory_a = Open(cluster_->directory_address(), Token(wire::Role::Client, "a/"));
  ASSERT_NE(directory_a, nullptr);
  std::vector<uint8_t> a_bytes = testing::PageBytes("a/x", kBytes);
  auto reserved = testing::RawPutStart(*directory_a, {"a/x"}, kBytes, kClientA);
  ASSERT_TRUE(reserved.ok()) << reserved.status();
  RawReservation r = (*reserved)[0];
  ASSERT_TRUE(WriteWith(r, a_bytes).ok());
  std::vector<absl::Status> committed =
      testing::RawPutCommit(*directory_a, {r.put_id}, Checksum(a_bytes), kClientA);
  ASSERT_EQ(committed.size(), 1u);
  ASSERT_TRUE(committed[0].ok()) << committed[0];
  ASSERT_TRUE(BecomesRefused(r, a_bytes)) << "the node still takes a's capability";

  // a's object is evicted, and b's lands in its range.
  auto admin = ClusterAdmin();
  ASSERT_NE(admin, nullptr);
  ASSERT_TRUE(testing::WaitUntil([&] {
    auto evicted = admin->Evict("a/");
    return evicted.ok() && *evicted == 1;
  }));
  ClientOptions tcp_only;
  tcp_only.shm = false;
  auto b = Connect(TokenFile("b.token", wire::Role::Client, "b/"), tcp_only);
  ASSERT_NE(b, nullptr);
  std::vector<uint8_t> b_bytes = testing::PageBytes("b/secret", kBytes);
  ASSERT_TRUE(b->Put("b/secret", b_bytes).ok());
  auto where = admin->Stat("b/secret");
  ASSERT_TRUE(where.ok()) << where.status();
  ASSERT_EQ(where->copies.size(), 1u);
  ASSERT_EQ(where->copies[0].offset, r.offset) << "b's object is not in a's old range";

  // a writes there with its old capability: refused, and b's bytes stay.
  std::vector<uint8_t> garbage(kBytes, 0xee);
  testing::ExpectRefused(WriteWith(r, garbage), kEnded);
  auto got = b->Get("b/secret");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, b_bytes);
}

TEST_F(WriteRevocationTest, AnAbortedPutsCapabilityIsRefused) {
  auto directory_a = Open(cluster_->directory_address(), Token(wire::Role::Client, "a/"));
  ASSERT_NE(directory_a, nullptr);
  auto reserved = testing::RawPutStart(*directory_a, {"a/y"}, kBytes, kClientA);
  ASSERT_TRUE(reserved.ok()) << reserved.status();
  RawReservation r = (*reserved)[0];
  std::vector<uint8_t> bytes = testing::PageBytes("a/y", kBytes);
  ASSERT_TRUE(WriteWith(r, bytes).ok());
  ASSERT_TRUE(testing::RawPutAbort(*directory_a, {r.put_id}, kClientA).ok());
  ASSERT_TRUE(BecomesRefused(r, bytes)) << "the node still takes the aborted put's";
  testing::ExpectRefused(WriteWith(r, bytes), kEnded);
}

}  // namespace
}  // namespace unipool
