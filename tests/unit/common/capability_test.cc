// Capabilities (common/capability.h): a genuine one is accepted for exactly
// what it names, and changing any field (slab, range, access, expiry, MAC,
// copy target) or the key that checks it makes it worthless.
#include "unipool/common/capability.h"

#include "gtest/gtest.h"
#include "unipool/pool_types.h"

namespace unipool {
namespace {

constexpr uint64_t kSlab = 0x5eed;
constexpr int64_t kExpiry = 1'800'000'000'000;  // unix ms
const absl::Time kBefore = absl::FromUnixMillis(kExpiry - 1000);

CapabilityKey KeyOf(const Credential& credential) {
  auto key = CapabilityKey::FromCredential(credential);
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

class CapabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = NewClusterKey();
    ASSERT_TRUE(cluster.ok());
    cluster_ = *cluster;
  }
  CapabilityUse Read(uint64_t offset, uint64_t length) const {
    return {.slab_id = kSlab, .offset = offset, .length = length, .access = wire::Access::Read};
  }
  Credential cluster_;
};

TEST_F(CapabilityTest, AGenuineCapabilityCoversItsRangeAndNoMore) {
  CapabilityKey key = KeyOf(cluster_);
  Capability cap = key.Issue(Read(4096, 8192), kExpiry);
  EXPECT_TRUE(key.Check(cap, Read(4096, 8192), kBefore).ok());
  EXPECT_TRUE(key.Check(cap, Read(4096 + 100, 8000), kBefore).ok());  // inside it
  for (CapabilityUse outside : {Read(4095, 10), Read(4096, 8193), Read(12287, 2), Read(0, 1),
                                Read(4096 + 8192, 1), Read(~0ull - 10, 20)}) {
    absl::Status s = key.Check(cap, outside, kBefore);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << outside.offset;
    EXPECT_NE(s.message().find("outside the capability's range"), std::string::npos) << s;
  }
}

TEST_F(CapabilityTest, EveryTamperedFieldIsRefused) {
  CapabilityKey key = KeyOf(cluster_);
  const Capability genuine = key.Issue(Read(4096, 8192), kExpiry);
  auto refused = [&](const Capability& cap, const CapabilityUse& use, const std::string& why) {
    absl::Status s = key.Check(cap, use, kBefore);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << why;
    EXPECT_NE(s.message().find(why), std::string::npos) << s;
  };
  Capability cap = genuine;
  cap.offset = 0;  // widened to the slab's start
  refused(cap, Read(0, 100), "not the directory's");
  cap = genuine;
  cap.length = 1 << 30;
  refused(cap, Read(4096, 1 << 20), "not the directory's");
  cap = genuine;
  cap.access = static_cast<uint8_t>(wire::Access::Write);
  refused(cap, {kSlab, 4096, 8192, wire::Access::Write}, "not the directory's");
  cap = genuine;
  cap.expires_unix_ms += 3'600'000;
  refused(cap, Read(4096, 8192), "not the directory's");
  for (size_t byte : {0, 17, 31}) {
    cap = genuine;
    cap.mac[byte] ^= 1;
    refused(cap, Read(4096, 8192), "not the directory's");
  }
  // Another node's slab.
  refused(genuine, {kSlab + 1, 4096, 8192, wire::Access::Read}, "not the directory's");
  // Used for another access than it grants.
  refused(genuine, {kSlab, 4096, 8192, wire::Access::Write}, "grants read");
  refused(Capability{}, Read(4096, 8192), "no capability");
}

TEST_F(CapabilityTest, ExpiredOnlyAfterTheClockSkew) {
  CapabilityKey key = KeyOf(cluster_);
  Capability cap = key.Issue(Read(0, 10), kExpiry);
  absl::Time expiry = absl::FromUnixMillis(kExpiry);
  EXPECT_TRUE(key.Check(cap, Read(0, 10), expiry + kCapabilityClockSkew).ok());
  absl::Status s = key.Check(cap, Read(0, 10), expiry + kCapabilityClockSkew + absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("expired"), std::string::npos) << s;
}

TEST_F(CapabilityTest, ACopyIsBoundToItsTarget) {
  CapabilityKey key = KeyOf(cluster_);
  CapabilityUse copy{.slab_id = kSlab,
                     .offset = 0,
                     .length = 4096,
                     .access = wire::Access::Copy,
                     .copy_target = "10.0.0.2:7301",
                     .copy_target_offset = 65536};
  Capability cap = key.Issue(copy, kExpiry);
  EXPECT_TRUE(key.Check(cap, copy, kBefore).ok());
  CapabilityUse elsewhere = copy;
  elsewhere.copy_target = "10.6.6.6:7301";  // the attacker's listener
  EXPECT_EQ(key.Check(cap, elsewhere, kBefore).code(), absl::StatusCode::kPermissionDenied);
  elsewhere = copy;
  elsewhere.copy_target_offset = 0;  // over another object on the target
  EXPECT_EQ(key.Check(cap, elsewhere, kBefore).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(CapabilityTest, NodesWithTheKeyOrANodeTokenAgreeAndOthersCannotCheck) {
  CapabilityKey directory = KeyOf(cluster_);
  auto node_token = NewToken(cluster_, wire::Role::Node, "");
  ASSERT_TRUE(node_token.ok());
  Capability cap = directory.Issue(Read(0, 10), kExpiry);
  EXPECT_TRUE(KeyOf(*node_token).Check(cap, Read(0, 10), kBefore).ok());

  auto other_pool = NewClusterKey();
  ASSERT_TRUE(other_pool.ok());
  EXPECT_EQ(KeyOf(*other_pool).Check(cap, Read(0, 10), kBefore).code(),
            absl::StatusCode::kPermissionDenied);
  for (auto [role, prefix] : {std::pair{wire::Role::Client, ""},
                              {wire::Role::Admin, ""},
                              {wire::Role::Node, "tenant-a/"}}) {
    auto token = NewToken(cluster_, role, prefix);
    ASSERT_TRUE(token.ok());
    EXPECT_EQ(CapabilityKey::FromCredential(*token).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
}

TEST_F(CapabilityTest, TheWireFormKeepsEveryField) {
  CapabilityKey key = KeyOf(cluster_);
  Capability cap = key.Issue({kSlab, 7, 9, wire::Access::Write}, kExpiry);
  wire::Capability encoded = EncodeCapability(cap);
  Capability decoded = DecodeCapability(&encoded);
  EXPECT_TRUE(key.Check(decoded, {kSlab, 7, 9, wire::Access::Write}, kBefore).ok());
  EXPECT_FALSE(DecodeCapability(nullptr).present());
}

}  // namespace
}  // namespace unipool
