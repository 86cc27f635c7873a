// Reservations: ids, charging and refunding quotas and pre-handed caps,
// expiry, and the reservations on one node.
#include "unipool/directory/reservations.h"

#include "gtest/gtest.h"

namespace unipool {
namespace {

constexpr uint64_t kPool = 8ull << 30;

PendingPut Put(std::string key, uint64_t bytes, std::string owner = "tenant-a",
               uint64_t holder = 0) {
  PendingPut pending;
  pending.key = std::move(key);
  pending.length = bytes;
  pending.quota_bytes = bytes;
  pending.owner = std::move(owner);
  pending.holder = holder;
  pending.copies = {{1, 0}};
  pending.deadline_unix_ms = 1000;
  return pending;
}

TEST(ReservationsTest, EachGetsADistinctNonZeroIdAndIsFoundByIt) {
  Reservations reservations({});
  uint64_t a = reservations.Add(Put("a", 10)).put_id;
  uint64_t b = reservations.Add(Put("b", 10)).put_id;
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  ASSERT_NE(reservations.Find(a), nullptr);
  EXPECT_EQ(reservations.Find(a)->key, "a");
  EXPECT_EQ(reservations.size(), 2u);
}

TEST(ReservationsTest, AQuotaIsChargedWhileReservedAndRefundedWhenTaken) {
  Reservations reservations({.max_reserved_share = 0.5, .max_pending_puts = 100});
  uint64_t id = reservations.Add(Put("a", kPool / 2)).put_id;
  EXPECT_EQ(reservations.CheckQuota("tenant-a", 1, kPool).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(reservations.CheckQuota("tenant-b", 1, kPool).ok());  // another tenant
  std::optional<PendingPut> taken = reservations.Take(id);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->key, "a");
  EXPECT_TRUE(reservations.CheckQuota("tenant-a", 1, kPool).ok());
  EXPECT_FALSE(reservations.Take(id).has_value());  // once
}

TEST(ReservationsTest, PrehandedOnesStayWithinTheHoldersCaps) {
  Reservations reservations({});
  Committer who{.owner = "tenant-a", .client_id = 9};
  const uint64_t bytes = kMaxPrehandedBytesPerClient / 4;
  std::vector<uint64_t> ids;
  while (reservations.MayPrehand(who, bytes, kPool)) {
    ids.push_back(reservations.Add(Put("", bytes, "tenant-a", who.client_id)).put_id);
    ASSERT_LE(ids.size(), 4u);
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(reservations.MayPrehand({.owner = "tenant-a", .client_id = 10}, bytes, kPool));
  reservations.Take(ids.back());
  EXPECT_TRUE(reservations.MayPrehand(who, bytes, kPool));
  // A small pool caps them at an eighth of its capacity.
  EXPECT_FALSE(reservations.MayPrehand({.owner = "", .client_id = 11}, kPool / 64, kPool / 16));
}

TEST(ReservationsTest, RestoredOnesKeepTheirIdsAndCostNoOne) {
  Reservations reservations({.max_reserved_share = 0.5, .max_pending_puts = 100});
  PendingPut restored = Put("a", kPool / 2);
  restored.put_id = 1234;
  restored.quota_bytes = 0;  // not persisted
  reservations.Restore(restored);
  EXPECT_NE(reservations.Find(1234), nullptr);
  EXPECT_TRUE(reservations.CheckQuota("tenant-a", kPool / 4, kPool).ok());
}

TEST(ReservationsTest, ExpiryAndCopiesPerNodeAreListed) {
  Reservations reservations({});
  PendingPut early = Put("early", 10);
  early.deadline_unix_ms = 100;
  PendingPut late = Put("late", 10);
  late.copies = {{2, 0}, {3, 4096}};
  uint64_t early_id = reservations.Add(early).put_id;
  uint64_t late_id = reservations.Add(late).put_id;
  EXPECT_EQ(reservations.ExpiredBy(500), std::vector<uint64_t>{early_id});
  EXPECT_EQ(reservations.WithCopyOn(3), std::vector<uint64_t>{late_id});
  EXPECT_TRUE(reservations.WithCopyOn(7).empty());
}

}  // namespace
}  // namespace unipool
