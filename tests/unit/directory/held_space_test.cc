// The held-space rule (directory.h): in a pool with a key, no range is
// reused while a capability the directory issued for it still works. Over a
// real RocksDB catalog with the fixture's fake clock.
#include "gtest/gtest.h"
#include "unipool/common/auth.h"
#include "unipool/common/capability.h"
#include "unipool/common/units.h"
#include "unipool/directory/directory.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

using testing::kMiB;
constexpr absl::Duration kLifetime = absl::Seconds(10);

class HeldSpaceTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    auto cluster_key = NewClusterKey();
    ASSERT_TRUE(cluster_key.ok());
    auto key = CapabilityKey::FromCredential(*cluster_key);
    ASSERT_TRUE(key.ok()) << key.status();
    options.capabilities = *key;
    options.read_capability_lifetime = kLifetime;
    options.lease = absl::Seconds(4);       // shorter than the capabilities
    options.node_timeout = absl::Hours(1);  // the node stays up without beats
  }
  void SetUp() override {
    DirectoryFixture::SetUp();
    MustRegister({"n1", 1, 64 * kMiB});
  }
  // Used bytes once the tick has reclaimed what is no longer held.
  uint64_t UsedAfterTick() {
    directory_->Tick();
    return Used();
  }
};

TEST_F(HeldSpaceTest, ALookedUpObjectIsHeldUntilItsReadCapabilitiesExpire) {
  Put("a/x", kMiB, 1);
  Advance(kPutTimeout + kCapabilityClockSkew);  // its write capabilities are over
  auto found = Find("a/x");
  ASSERT_TRUE(found.ok());
  const int64_t expires = found->copies.at(0).capability.expires_unix_ms;
  EXPECT_EQ(expires, absl::ToUnixMillis(now_ + kLifetime));
  EXPECT_LE(found->lease, kLifetime);  // the client's cache trusts no longer
  ASSERT_TRUE(Remove("a/x").ok());
  Advance(kLifetime + kCapabilityClockSkew - absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB)) << "reused while the capability works";
  Advance(absl::Milliseconds(2));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnAbortedReservationIsHeldUntilItsWriteCapabilitiesEnd) {
  auto reservation = Start("a/y", kMiB);
  ASSERT_TRUE(reservation.ok());
  const int64_t write_until = reservation->location.copies.at(0).capability.expires_unix_ms;
  Abort(reservation->put_id);
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  now_ = absl::FromUnixMillis(write_until) + kCapabilityClockSkew;
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnObjectRemovedRightAfterItsPutIsHeldForItsWriter) {
  Put("a/z", kMiB, 1);
  ASSERT_TRUE(Remove("a/z").ok());
  Advance(kPutTimeout);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(kCapabilityClockSkew + absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, AnExpiredReservationIsHeldForTheClockSkew) {
  ASSERT_TRUE(Start("a/w", kMiB).ok());
  Advance(kPutTimeout + absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  EXPECT_EQ(directory_->Status().pending_puts, 0u);
  Advance(kCapabilityClockSkew);
  EXPECT_EQ(UsedAfterTick(), 0u);
}

TEST_F(HeldSpaceTest, ARestartHoldsEveryObjectForAPutTimeout) {
  Put("a/v", kMiB, 1);
  ASSERT_TRUE(Reopen().ok());
  MustRegister({"n1", 1, 64 * kMiB});
  ASSERT_TRUE(Remove("a/v").ok());
  Advance(kPutTimeout);
  EXPECT_EQ(UsedAfterTick(), RoundUpToAllocation(kMiB));
  Advance(kCapabilityClockSkew + absl::Milliseconds(1));
  EXPECT_EQ(UsedAfterTick(), 0u);
}

}  // namespace
}  // namespace unipool
