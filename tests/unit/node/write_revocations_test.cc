#include "unipool/node/write_revocations.h"

#include <thread>

#include "gtest/gtest.h"
#include "unipool/common/capability.h"

namespace unipool {
namespace {

const absl::Time kNow = absl::FromUnixMillis(1'000'000);

Capability WriteCapability(uint8_t id, absl::Duration lasts) {
  Capability capability;
  capability.access = static_cast<uint8_t>(wire::Access::Write);
  capability.expires_unix_ms = absl::ToUnixMillis(kNow + lasts);
  capability.mac.fill(id);
  return capability;
}

TEST(WriteRevocationsTest, ARevokedCapabilityIsRefusedAndAnotherForTheSameRangeIsNot) {
  WriteRevocations revocations;
  Capability old = WriteCapability(1, absl::Seconds(30));
  Capability next = old;  // the next put's, for the same range
  next.mac.fill(2);
  ASSERT_TRUE(revocations.Revoke({&old, 1}, kNow).ok());
  EXPECT_TRUE(revocations.Revoked(old));
  EXPECT_FALSE(revocations.Revoked(next));
  EXPECT_FALSE(revocations.BeginWrite({&old, 1}));
  ASSERT_TRUE(revocations.BeginWrite({&next, 1}));
  revocations.EndWrite({&next, 1});
}

TEST(WriteRevocationsTest, EachIsKeptUntilItsCapabilityWouldHaveExpired) {
  WriteRevocations revocations;
  Capability short_lived = WriteCapability(1, absl::Seconds(1));
  Capability expired = WriteCapability(2, -absl::Minutes(1));
  Capability long_lived = WriteCapability(3, absl::Seconds(30));
  Capability three[] = {short_lived, expired, long_lived};
  ASSERT_TRUE(revocations.Revoke(three, kNow).ok());
  EXPECT_EQ(revocations.size(), 2u);  // the expired one needs no entry
  // Past the first's expiry and the clock skew: only the second is kept.
  Capability another = WriteCapability(4, absl::Seconds(30));
  ASSERT_TRUE(revocations
                  .Revoke({&another, 1},
                          kNow + absl::Seconds(1) + kCapabilityClockSkew + absl::Milliseconds(1))
                  .ok());
  EXPECT_FALSE(revocations.Revoked(short_lived));
  EXPECT_TRUE(revocations.Revoked(long_lived));
  EXPECT_EQ(revocations.size(), 2u);
}

TEST(WriteRevocationsTest, AFullListRefusesWholeBatches) {
  WriteRevocations revocations(/*max_entries=*/2);
  Capability two[] = {WriteCapability(1, absl::Seconds(30)), WriteCapability(2, absl::Seconds(30))};
  ASSERT_TRUE(revocations.Revoke(two, kNow).ok());
  Capability third = WriteCapability(3, absl::Seconds(30));
  absl::Status full = revocations.Revoke({&third, 1}, kNow);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_FALSE(revocations.Revoked(third));
  // Revoking one already revoked again (a retried request) takes no room.
  EXPECT_EQ(revocations.size(), 2u);
}

TEST(WriteRevocationsTest, RevokeWaitsForAWriteUnderWay) {
  WriteRevocations revocations;
  Capability capability = WriteCapability(1, absl::Seconds(30));
  ASSERT_TRUE(revocations.BeginWrite({&capability, 1}));
  std::atomic<bool> revoked{false};
  std::thread revoker([&] {
    EXPECT_TRUE(revocations.Revoke({&capability, 1}, kNow).ok());
    revoked = true;
  });
  // The revocation is in force at once, while its answer waits for the write.
  while (!revocations.Revoked(capability)) std::this_thread::yield();
  EXPECT_FALSE(revoked.load());
  EXPECT_FALSE(revocations.BeginWrite({&capability, 1}));
  revocations.EndWrite({&capability, 1});
  revoker.join();
  EXPECT_TRUE(revoked.load());
}

}  // namespace
}  // namespace unipool
