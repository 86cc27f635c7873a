// The per-client reservation quota (directory/client_quota.cc): what one
// client may hold reserved and uncommitted, so that it cannot fill the pool.
#include "unipool/directory/client_quota.h"

#include "gtest/gtest.h"

namespace unipool {
namespace {

TEST(ClientQuotaTest, OneClientHoldsAtMostItsShareAndItsPuts) {
  ClientQuota quota({.max_reserved_share = 0.5, .max_pending_puts = 3});
  const uint64_t capacity = 100;
  EXPECT_TRUE(quota.Check("a", 50, capacity).ok());
  quota.Charge("a", 40);
  EXPECT_EQ(quota.Check("a", 11, capacity).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(quota.Check("a", 10, capacity).ok());
  EXPECT_TRUE(quota.Check("b", 50, capacity).ok());  // another client is unaffected
  quota.Charge("a", 1);
  quota.Charge("a", 1);
  absl::Status full = quota.Check("a", 1, capacity);  // 3 puts held
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("client a holds 3 uncommitted puts"), std::string::npos) << full;
  quota.Refund("a", 40);
  quota.Refund("a", 1);
  EXPECT_TRUE(quota.Check("a", 49, capacity).ok());
  quota.Refund("a", 1);
  quota.Refund("a", 1);  // more refunds than charges (after a restart) are ignored
  EXPECT_TRUE(quota.Check("", 1000, capacity).ok());  // the directory's own work
}

TEST(ClientQuotaTest, ATokensOwnReservationQuotaReplacesThePoolShare) {
  const uint64_t capacity = 100;
  ClientQuota quota({.max_reserved_share = 0.5, .max_pending_puts = 100});
  quota.Charge("t", 8);
  EXPECT_TRUE(quota.Check("t", 2, capacity, /*limit=*/10).ok());
  absl::Status over = quota.Check("t", 3, capacity, /*limit=*/10);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("its token's reservation quota"), std::string::npos) << over;
  EXPECT_TRUE(quota.Check("t", 80, capacity, /*limit=*/90).ok());  // above the share
}

}  // namespace
}  // namespace unipool
