// A full pool waits, it does not fail: when the only room is held by read
// leases, held extents, reservations or a restart's grace, PutStart answers
// ResourceExhausted with a retry hint (unipool/common/retry_after.h) saying
// when room may come; when pins (or a slab too small) leave none, the
// answer is final, without a hint. Time is the fixture's fake clock.
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/common/retry_after.h"
#include "unipool/directory/directory.h"
#include "unipool/testing/directory_fixture.h"

namespace unipool {
namespace {

using testing::kKiB;
using testing::kMiB;
using testing::TestNode;

constexpr absl::Duration kLease = absl::Seconds(10);
constexpr uint64_t kPage = 256 * kKiB;
const TestNode kSmall{"small", 0x5, 1 * kMiB};  // four pages

class PoolFullWaitTest : public testing::DirectoryFixture {
 protected:
  void Configure(DirectoryOptions& options) override {
    options.lease = kLease;
    // Only a put's own eviction makes room (Tick sweeps nothing).
    options.high_watermark = options.low_watermark = 1.0;
  }
  void SetUp() override {
    DirectoryFixture::SetUp();
    node_ = MustRegister(kSmall);
  }
  static std::string Page(int i) { return "page-" + std::to_string(i); }
  void Fill() {
    for (int i = 0; i < 4; ++i) Put(Page(i), kPage, i + 1);
  }
  // The hint of a put refused now (nullopt: refused for good, or placed).
  std::optional<absl::Duration> HintForOnePage() {
    auto r = Start("new", kPage);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return std::nullopt;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
    EXPECT_NE(r.status().message().find("pool full"), std::string::npos) << r.status();
    return RetryAfter(r.status());
  }
  NodeId node_ = 0;
};

TEST_F(PoolFullWaitTest, LeasedObjectsMakeAPutWaitUntilTheFirstLeaseEnds) {
  Fill();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Find(Page(i)).ok());
  Advance(absl::Seconds(2));
  ASSERT_TRUE(Find(Page(0)).ok());  // page-0 now leased until 12 s, the others 10 s
  EXPECT_EQ(HintForOnePage(), absl::Seconds(8));
  EXPECT_EQ(directory_->pool_full_waits(), 1u);
  EXPECT_EQ(Used(), 1 * kMiB) << "a refused put reserves nothing";
  Advance(absl::Seconds(8) + absl::Milliseconds(1));
  auto r = Start("new", kPage);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Exists(Page(0))) << "the one still leased stays";
}

TEST_F(PoolFullWaitTest, PinsLeaveNoRoomForGood) {
  Fill();
  ASSERT_TRUE(directory_->Pin("page-", /*prefix=*/true).ok());
  EXPECT_EQ(HintForOnePage(), std::nullopt);
  // One leased unpinned object is enough to wait for.
  ASSERT_TRUE(directory_->Unpin("page-", /*prefix=*/true).ok());
  ASSERT_TRUE(directory_->Pin(Page(0), /*prefix=*/false).ok());
  ASSERT_TRUE(directory_->Pin(Page(1), /*prefix=*/false).ok());
  ASSERT_TRUE(directory_->Pin(Page(2), /*prefix=*/false).ok());
  ASSERT_TRUE(Find(Page(3)).ok());
  EXPECT_EQ(HintForOnePage(), kLease);
  EXPECT_EQ(directory_->pool_full_waits(), 1u);
}

TEST_F(PoolFullWaitTest, AnObjectLargerThanEverySlabIsFinal) {
  auto r = Start("huge", 2 * kMiB);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(RetryAfter(r.status()), std::nullopt);
}

TEST_F(PoolFullWaitTest, HeldExtentsOfRemovedObjectsMakeAPutWait) {
  Fill();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Find(Page(i)).ok());
  Advance(absl::Seconds(1));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Remove(Page(i)).ok());
  // Gone from the map, but a reader may still read their memory.
  EXPECT_EQ(HintForOnePage(), absl::Seconds(9));
  Advance(absl::Seconds(9) + absl::Milliseconds(1));
  ASSERT_TRUE(directory_->Heartbeat(node_, kSmall.slab_id, {}).ok());
  directory_->Tick();  // releases what is held no longer
  ASSERT_TRUE(Start("new", kPage).ok());
}

TEST_F(PoolFullWaitTest, ReservationsMakeAPutWaitUntilCommittedOrReclaimed) {
  uint64_t first = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = Start(Page(i), kPage);
    ASSERT_TRUE(r.ok()) << r.status();
    if (i == 0) first = r->put_id;
  }
  EXPECT_EQ(HintForOnePage(), kPutTimeout);
  // Committed, unleased: evictable at once.
  ASSERT_TRUE(Commit(first, 7).ok());
  ASSERT_TRUE(Start("new", kPage).ok());
}

TEST_F(PoolFullWaitTest, ARestartMakesPutsWaitOutItsGraceNotFail) {
  Fill();
  ASSERT_TRUE(Reopen().ok());
  MustRegister(kSmall);
  // Leases a reader may hold are unknown: every object counts as leased.
  EXPECT_EQ(HintForOnePage(), kLease);
  Advance(kLease + absl::Milliseconds(1));
  ASSERT_TRUE(Start("new", kPage).ok());
}

}  // namespace
}  // namespace unipool
