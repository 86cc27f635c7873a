// Repairs: verification owed per node, remade copies, the repair byte
// budget and the cached under-replicated count.
#include "unipool/directory/repairs.h"

#include "gtest/gtest.h"

namespace unipool {
namespace {

std::vector<VerifyItem> Copies(int n) {
  std::vector<VerifyItem> items;
  for (int i = 0; i < n; ++i) items.push_back({"k" + std::to_string(i), 1, 0, 10, 0});
  return items;
}

TEST(RepairsTest, AReadmittedNodeIsVerifiedOnceAndPlannedAgainAfterAFailure) {
  Repairs repairs(1 << 20);
  repairs.Readmitted(1, Copies(3));
  repairs.Readmitted(2, {});  // nothing on it: nothing owed
  EXPECT_TRUE(repairs.Unverified(1));
  EXPECT_FALSE(repairs.Unverified(2));
  EXPECT_FALSE(repairs.TakeVerification([](NodeId) { return false; }).has_value());
  auto taken = repairs.TakeVerification([](NodeId) { return true; });
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->first, 1u);
  EXPECT_EQ(taken->second.size(), 3u);
  EXPECT_FALSE(repairs.TakeVerification([](NodeId) { return true; }).has_value());  // out
  EXPECT_TRUE(repairs.StopVerifying(1));  // failed: planned again
  EXPECT_FALSE(repairs.StopVerifying(1));
  ASSERT_TRUE(repairs.TakeVerification([](NodeId) { return true; }).has_value());
  repairs.Verified(1);
  EXPECT_FALSE(repairs.Unverified(1));
}

TEST(RepairsTest, AReRegistrationReplacesTheVerificationOut) {
  Repairs repairs(1 << 20);
  repairs.Readmitted(1, Copies(2));
  ASSERT_TRUE(repairs.TakeVerification([](NodeId) { return true; }).has_value());
  repairs.Readmitted(1, Copies(5));
  EXPECT_FALSE(repairs.StopVerifying(1));  // the old answer is ignored
  auto again = repairs.TakeVerification([](NodeId) { return true; });
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->second.size(), 5u);
  repairs.ClearVerification(1);
  EXPECT_FALSE(repairs.Unverified(1));
}

TEST(RepairsTest, RemakesComeOutInOrder) {
  Repairs repairs(1 << 20);
  repairs.RemakeLater({"a", 1});
  repairs.RemakeLater({"b", 2});
  EXPECT_EQ(repairs.remakes_owed(), 2u);
  EXPECT_EQ(repairs.NextRemake()->key, "a");
  EXPECT_EQ(repairs.NextRemake()->key, "b");
  EXPECT_FALSE(repairs.NextRemake().has_value());
}

TEST(RepairsTest, TheBudgetStartsFullRefillsWithTimeAndBanksAtMostASecond) {
  const uint64_t rate = 1000 * 1000;
  Repairs repairs(rate);
  EXPECT_TRUE(repairs.StartRepair(1, 0));
  EXPECT_FALSE(repairs.StartRepair(1, 0));
  EXPECT_TRUE(repairs.Repairing(1));
  EXPECT_EQ(repairs.Budget(0), rate);
  repairs.Spend(rate);
  EXPECT_EQ(repairs.Budget(0), 0u);
  EXPECT_EQ(repairs.Budget(500), rate / 2);
  EXPECT_EQ(repairs.Budget(10'000), rate);
  EXPECT_TRUE(repairs.EndRepair(1));
  EXPECT_FALSE(repairs.Repairing(1));
}

TEST(RepairsTest, TheUnderReplicatedCountIsStaleAfterALivenessChange) {
  Repairs repairs(1 << 20);
  EXPECT_TRUE(repairs.RecountDue(0, 0));
  repairs.Recounted(17, 0, 3);
  EXPECT_EQ(repairs.UnderReplicated(3), 17u);
  EXPECT_FALSE(repairs.RecountDue(10, 3));
  EXPECT_TRUE(repairs.RecountDue(10, 4));
  EXPECT_FALSE(repairs.UnderReplicated(4).has_value());
  EXPECT_TRUE(repairs.RecountDue(Repairs::kRecountMs, 3));
}

}  // namespace
}  // namespace unipool
