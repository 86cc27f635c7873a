// Tenants (tenants.h): which tenant a key belongs to, what each holds in
// allocated bytes, and the storage, protection and pin rules; then the same
// rules enforced by a Directory over a real catalog with the fixture's
// clock (a tenant's flood evicts its own objects, never another tenant's
// within its quota; pins past the pin quota are refused; one-byte
// reservations cost their allocation unit).
#include "unipool/directory/tenants.h"

#include "gtest/gtest.h"
#include "unipool/directory/allocator.h"
#include "unipool/directory/directory.h"
#include "unipool/tensor/records.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

using testing::kMiB;
constexpr uint64_t kUnit = kAllocationAlignment;

TEST(TenantsTest, AKeyBelongsToTheLongestPrefixAndAStripeToItsOwner) {
  Tenants tenants;
  EXPECT_TRUE(tenants.Learn("a/", {}));
  EXPECT_TRUE(tenants.Learn("a/b/", {}));
  EXPECT_FALSE(tenants.Learn("a/", {kMiB, 0}));  // known: only its limits change
  EXPECT_FALSE(tenants.Learn("", {}));           // a token for every key is no tenant
  EXPECT_TRUE(tenants.Knows("a/", {kMiB, 0}));
  EXPECT_FALSE(tenants.Knows("a/", {}));
  EXPECT_EQ(tenants.TenantOf("a/x"), "a/");
  EXPECT_EQ(tenants.TenantOf("a/b/x"), "a/b/");
  EXPECT_EQ(tenants.TenantOf("c/x"), "");
  EXPECT_EQ(tenants.TenantOf(StripeKey(7, "a/b/model", 0, 3)), "a/b/");
}

TEST(TenantsTest, UsageIsCountedPerTenantAndExcessAgainstTheStorageQuota) {
  Tenants tenants;
  tenants.Learn("a/", {4 * kUnit, 0});
  tenants.Account("a/x", 3 * kUnit, /*pinned=*/true, +1);
  tenants.Account("a/y", kUnit, false, +1);
  tenants.Account("c/z", 100 * kUnit, false, +1);  // no tenant: not counted
  std::vector<TenantUsage> usage = tenants.Usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].objects, 2u);
  EXPECT_EQ(usage[0].stored_bytes, 4 * kUnit);
  EXPECT_EQ(usage[0].pinned_bytes, 3 * kUnit);
  EXPECT_EQ(tenants.StorageExcess("a/new", 0), 0u);
  EXPECT_EQ(tenants.StorageExcess("a/new", 2 * kUnit), 2 * kUnit);
  EXPECT_EQ(tenants.StorageExcess("c/new", 1000 * kUnit), 0u);  // no tenant, no quota
  tenants.Account("a/x", 3 * kUnit, true, -1);
  EXPECT_EQ(tenants.Usage()[0].stored_bytes, kUnit);
  EXPECT_EQ(tenants.Usage()[0].pinned_bytes, 0u);
  tenants.ResetUsage();
  EXPECT_EQ(tenants.Usage()[0].objects, 0u);
}

TEST(TenantsTest, ATenantWithinItsQuotaIsEvictedOnlyForItsOwnKeys) {
  Tenants tenants;
  tenants.Learn("a/", {});              // unlimited: never protected
  tenants.Learn("b/", {4 * kUnit, 0});  // within its quota
  tenants.Learn("o/", {kUnit, 0});      // over its quota
  tenants.Account("b/1", 2 * kUnit, false, +1);
  tenants.Account("o/1", 2 * kUnit, false, +1);
  EXPECT_FALSE(tenants.MayEvictFor("b/1", "a/x"));
  EXPECT_FALSE(tenants.MayEvictFor("b/1", "k/x"));  // the cluster key's put
  EXPECT_FALSE(tenants.MayEvictFor("b/1", ""));     // the sweeps
  EXPECT_TRUE(tenants.MayEvictFor("b/1", "b/x"));   // its own put
  EXPECT_TRUE(tenants.MayEvictFor("o/1", "a/x"));   // over its quota
  EXPECT_TRUE(tenants.MayEvictFor("a/1", "b/x"));   // no quota
  EXPECT_TRUE(tenants.MayEvictFor("k/1", "b/x"));   // the cluster key's
}

TEST(TenantsTest, APinPastThePinQuotaIsRefused) {
  Tenants tenants;
  tenants.Learn("a/", {0, 2 * kUnit});
  tenants.Account("a/x", kUnit, /*pinned=*/true, +1);
  EXPECT_TRUE(tenants.CheckPin("a/y", kUnit).ok());
  absl::Status refused = tenants.CheckPin("a/y", 2 * kUnit);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("pin quota"), std::string_view::npos) << refused;
  EXPECT_TRUE(tenants.CheckPin("c/y", 1000 * kUnit).ok());  // no tenant
}

class TenantsDirectoryTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    options.node_timeout = absl::Hours(1);  // the node stays up without beats
  }
  void SetUp() override {
    DirectoryFixture::SetUp();
    MustRegister({"n1", 1, 16 * kMiB});
  }
  std::optional<TenantState> TenantNamed(std::string_view prefix) {
    for (const TenantState& t : directory_->Status().tenants) {
      if (t.prefix == prefix) return t;
    }
    return std::nullopt;
  }
};

TEST_F(TenantsDirectoryTest, ATenantPastItsStorageQuotaEvictsItsOwnColdestObjects) {
  directory_->LearnTenant("a/", 4 * kMiB, 0);
  for (int i = 0; i < 4; ++i) Put("a/" + std::to_string(i), kMiB, 1);
  Put("c/other", kMiB, 1);  // the cluster key's, older than a/4's put
  Put("a/4", kMiB, 1);
  EXPECT_FALSE(Exists("a/0")) << "the tenant's coldest object should have made room";
  for (const char* key : {"a/1", "a/2", "a/3", "a/4", "c/other"}) EXPECT_TRUE(Exists(key)) << key;
  std::optional<TenantState> a = TenantNamed("a/");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->stored, 4 * kMiB);
  EXPECT_EQ(a->objects, 4u);
  EXPECT_EQ(a->storage_quota, 4 * kMiB);
}

TEST_F(TenantsDirectoryTest, AFloodNeverEvictsAnotherTenantWithinItsQuota) {
  directory_->LearnTenant("a/", 0, 0);  // unlimited
  directory_->LearnTenant("b/", 8 * kMiB, 0);
  for (int i = 0; i < 6; ++i) Put("b/" + std::to_string(i), kMiB, 1);
  for (int i = 0; i < 40; ++i) {  // 40 MiB through a 16 MiB pool
    Put("a/" + std::to_string(i), kMiB, 1);
    directory_->Tick();  // the watermark sweeps spare b too
  }
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(Exists("b/" + std::to_string(i))) << i;
  EXPECT_TRUE(Exists("a/39"));
  // Room that only b's objects could make is refused.
  absl::StatusOr<Reservation> big = Start("a/big", 12 * kMiB);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(Exists("b/" + std::to_string(i))) << i;
  // Past its own quota, b evicts its own coldest object.
  Put("b/6", 3 * kMiB, 1);
  EXPECT_FALSE(Exists("b/0"));
  for (int i = 1; i <= 6; ++i) EXPECT_TRUE(Exists("b/" + std::to_string(i))) << i;
}

TEST_F(TenantsDirectoryTest, PinsPastThePinQuotaAreRefused) {
  directory_->LearnTenant("a/", 0, 2 * kMiB);
  for (const char* key : {"a/x", "a/y", "a/z"}) Put(key, kMiB, 1);
  ASSERT_TRUE(directory_->Pin("a/x", false).ok());
  ASSERT_TRUE(directory_->Pin("a/y", false).ok());
  absl::Status refused = directory_->Pin("a/z", false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(directory_->Pin("a/", /*prefix=*/true).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(TenantNamed("a/")->pinned, 2 * kMiB);
  EXPECT_EQ(directory_->Status().pinned, 2u);
}

TEST_F(TenantsDirectoryTest, UsageIsInAllocatedBytesAndFollowsANewLongerPrefix) {
  directory_->LearnTenant("a/", 0, 0);
  Put("a/b/one-byte", 1, 1);
  Put("a/x", 1, 1);
  EXPECT_EQ(TenantNamed("a/")->stored, 2 * kUnit);
  directory_->LearnTenant("a/b/", 0, 0);  // its keys move to it
  EXPECT_EQ(TenantNamed("a/")->stored, kUnit);
  EXPECT_EQ(TenantNamed("a/b/")->stored, kUnit);
  EXPECT_EQ(TenantNamed("a/b/")->objects, 1u);
}

TEST_F(TenantsDirectoryTest, OneByteReservationsCostTheirAllocationUnit) {
  const uint64_t limit = 16 * kUnit;
  uint64_t granted = 0;
  for (int i = 0; i < 64; ++i) {
    std::string key = "a/r" + std::to_string(i);
    PutRequest request{key, 1, false, 1, "'a/' (client token)", 7, limit};
    auto result = directory_->PutStart({&request, 1});
    if (!result[0].ok()) {
      EXPECT_EQ(result[0].status().code(), absl::StatusCode::kResourceExhausted);
      break;
    }
    ++granted;
  }
  EXPECT_EQ(granted, limit / kUnit);
  EXPECT_EQ(Used(), limit);
}

}  // namespace
}  // namespace unipool
