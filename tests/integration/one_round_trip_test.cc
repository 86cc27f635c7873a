// One directory round trip per put (issue 13): after a shape of put has been
// seen, each PutCommit hands out the reservations for the next puts of that
// shape, so a put is a write to the node and one PutCommit. Counted with the
// client's own request counter, for single and batch puts; then the
// directory is SIGKILLed while such reservations are out: restarted, it
// reclaims their space when they expire, no object is half-visible, and the
// client's stale reservations are put again through PutStart.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/cluster_test.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

using ::unipool::testing::PageBytes;

constexpr uint64_t KiB = 1024;

class OneRoundTripTest : public testing::ClusterTest {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = 2;
    options.pool_size = 256ull << 20;
    // Reservations left behind by the kill expire soon.
    options.directory_flags = {"--put-timeout=6s"};
    ASSERT_NO_FATAL_FAILURE(StartCluster("one_round_trip", options));
    ClientOptions client_options;
    client_options.name = "one-round-trip-test";
    ASSERT_NO_FATAL_FAILURE(ConnectClient(client_options));
  }

  // Puts `count` keys "name/i" of `size` bytes in one batch (with
  // `replicas`), remembers them, and returns the directory requests it took.
  uint64_t PutBatch(const std::string& name, int count, size_t size, int replicas = 1) {
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> values;
    for (int i = 0; i < count; ++i) {
      keys.push_back(absl::StrFormat("%s/%d", name, i));
      values.push_back(PageBytes(keys.back(), size));
    }
    std::vector<std::string_view> k(keys.begin(), keys.end());
    std::vector<std::span<const uint8_t>> v(values.begin(), values.end());
    uint64_t before = client_->stats().directory_requests;
    for (const absl::Status& s : client_->BatchPut(k, v, {.replicas = replicas})) {
      EXPECT_TRUE(s.ok()) << s;
    }
    for (size_t i = 0; i < keys.size(); ++i) put_[keys[i]] = size;
    return client_->stats().directory_requests - before;
  }
  uint64_t PutOne(const std::string& key, size_t size) {
    uint64_t before = client_->stats().directory_requests;
    absl::Status s = client_->Put(key, PageBytes(key, size));
    EXPECT_TRUE(s.ok()) << key << ": " << s;
    put_[key] = size;
    return client_->stats().directory_requests - before;
  }
  // Every key put reads back its bytes, and the pool lists exactly those.
  void ExpectExactlyWhatWasPut() {
    for (const auto& [key, size] : put_) {
      auto got = client_->Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status();
      ASSERT_EQ(*got, PageBytes(key, size)) << key << ": wrong bytes";
    }
    auto listed = admin_->List("", 10000);
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->entries.size(), put_.size()) << "an object nobody committed is visible";
    for (const ListEntry& entry : listed->entries) {
      EXPECT_TRUE(put_.contains(entry.key)) << entry.key << " was never put";
    }
  }
  uint64_t BytesPut() const {
    uint64_t bytes = 0;
    for (const auto& [key, size] : put_) bytes += size;
    return bytes;
  }

  std::map<std::string, size_t> put_;
};

TEST_F(OneRoundTripTest, SinglePutsTakeOneRoundTripAfterWarmUp) {
  // The first put of a shape and the one that asks for its reservations
  // take PutStart and PutCommit; from then on, a PutCommit only.
  EXPECT_EQ(PutOne("single/0", 64 * KiB), 2u);
  EXPECT_EQ(PutOne("single/1", 64 * KiB), 2u);
  for (int i = 2; i < 20; ++i) {
    EXPECT_EQ(PutOne(absl::StrFormat("single/%d", i), 64 * KiB), 1u) << "put " << i;
  }
  // Another shape warms up on its own.
  EXPECT_EQ(PutOne("other/0", 4 * KiB), 2u);
  EXPECT_EQ(PutOne("other/1", 4 * KiB), 2u);
  EXPECT_EQ(PutOne("other/2", 4 * KiB), 1u);
  // The key is checked at commit: an existing key is refused, unless replace.
  absl::Status again = client_->Put("single/3", PageBytes("x", 64 * KiB));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;
  ASSERT_TRUE(client_->Put("single/3", PageBytes("y", 64 * KiB), {.replace = true}).ok());
  auto replaced = client_->Get("single/3");
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(*replaced, PageBytes("y", 64 * KiB));
  put_.erase("single/3");
  ASSERT_TRUE(client_->Remove("single/3").ok());
  ExpectExactlyWhatWasPut();
}

TEST_F(OneRoundTripTest, BatchPutsTakeOneRoundTripAfterWarmUp) {
  EXPECT_EQ(PutBatch("batch0", 64, 16 * KiB), 2u);
  EXPECT_EQ(PutBatch("batch1", 64, 16 * KiB), 2u);
  for (int b = 2; b < 6; ++b) {
    EXPECT_EQ(PutBatch(absl::StrFormat("batch%d", b), 64, 16 * KiB), 1u) << "batch " << b;
  }
  // Two copies on the two nodes: a shape of its own.
  EXPECT_EQ(PutBatch("twice0", 16, 32 * KiB, 2), 2u);
  EXPECT_EQ(PutBatch("twice1", 16, 32 * KiB, 2), 2u);
  EXPECT_EQ(PutBatch("twice2", 16, 32 * KiB, 2), 1u);
  auto listed = admin_->List("twice", 1000);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->entries.size(), 48u);
  for (const ListEntry& entry : listed->entries) EXPECT_EQ(entry.nodes.size(), 2u) << entry.key;
  ExpectExactlyWhatWasPut();
}

TEST_F(OneRoundTripTest, ReservationsOutAtASigkillAreReclaimedAfterTheRestart) {
  for (int b = 0; b < 3; ++b) PutBatch(absl::StrFormat("before%d", b), 64, 64 * KiB);
  auto out = admin_->State();
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_GE(out->pending_puts, 64u) << "the stock of pre-handed reservations";
  EXPECT_EQ(out->used, BytesPut() + out->pending_puts * 64 * KiB);

  ASSERT_TRUE(cluster_->KillDirectory().ok());
  ASSERT_TRUE(cluster_->RestartDirectory().ok());
  ASSERT_TRUE(cluster_->WaitForNodesUp(2, absl::Seconds(30)).ok());
  // The client's stock is stale: a batch now (while the stock is within its
  // time) finds out at commit and puts those items again through PutStart.
  PutBatch("right_after", 64, 64 * KiB);
  ExpectExactlyWhatWasPut();
  // The reservations out at the kill, and those handed out since (never
  // used), are kept until they expire (a holder might still be writing),
  // then reclaimed: the pool's used bytes come back to the objects'.
  absl::StatusOr<PoolState> state;
  testing::WaitUntil([&] {
    state = admin_->State();
    return !state.ok() || (state->pending_puts == 0 && state->used == BytesPut());
  });
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->pending_puts, 0u);
  EXPECT_EQ(state->used, BytesPut()) << "the reservations' space was not reclaimed";
  ExpectExactlyWhatWasPut();

  // Warm again.
  PutBatch("after0", 64, 64 * KiB);
  PutBatch("after1", 64, 64 * KiB);
  EXPECT_EQ(PutBatch("after2", 64, 64 * KiB), 1u);
  ExpectExactlyWhatWasPut();
}

}  // namespace
}  // namespace unipool
