// Two directories' elections in one process against a real etcd on
// loopback: one leader at a time, terms that grow, a resignation that hands
// over, a stopped leader replaced.
#include "unipool/election/leader_election.h"

#include <signal.h>

#include "absl/synchronization/mutex.h"
#include "etcd_member.h"
#include "gtest/gtest.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/wait.h"

namespace unipool {
namespace {

using testing::EtcdMember;
using testing::WaitUntil;

// What one candidate's callbacks saw.
struct Events {
  absl::Mutex mutex;
  std::vector<int64_t> elected ABSL_GUARDED_BY(mutex);
  std::vector<std::string> deposed ABSL_GUARDED_BY(mutex);
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto member = EtcdMember::Start(dir_.path());
    ASSERT_TRUE(member.ok()) << member.status();
    member_ = std::move(*member);
    etcd_ = std::move(*EtcdClient::Create({.endpoints = {member_->url()}}));
  }

  std::unique_ptr<LeaderElection> Candidate(const std::string& address, Events* events) {
    ElectionOptions options;
    options.pool = "ha-test";
    options.address = address;
    options.lease_ttl = absl::Seconds(3);
    options.renew_interval = absl::Milliseconds(500);
    options.safety_margin = absl::Milliseconds(500);
    options.resign_holdoff = absl::Seconds(5);
    options.on_elected = [events](int64_t term) {
      absl::MutexLock lock(&events->mutex);
      events->elected.push_back(term);
    };
    options.on_deposed = [events](int64_t term, std::string_view why) {
      absl::MutexLock lock(&events->mutex);
      events->deposed.emplace_back(why);
    };
    auto election = LeaderElection::Start(etcd_.get(), options);
    EXPECT_TRUE(election.ok()) << election.status();
    return election.ok() ? std::move(*election) : nullptr;
  }

  testing::TestDir dir_{"election"};
  std::unique_ptr<EtcdMember> member_;
  std::unique_ptr<EtcdClient> etcd_;
};

TEST_F(LeaderElectionTest, OneLeadsTheOtherKnowsItAndResignHandsOverWithAHigherTerm) {
  Events ea, eb;
  auto a = Candidate("a:7300", &ea);
  ASSERT_TRUE(WaitUntil([&] { return a->LeaderTerm().has_value(); }, absl::Seconds(20)));
  auto b = Candidate("b:7300", &eb);
  int64_t first_term = *a->LeaderTerm();
  ASSERT_TRUE(WaitUntil([&] { return b->View().leader_address == "a:7300"; }, absl::Seconds(20)));
  EXPECT_EQ(b->View().leader_term, first_term);
  EXPECT_FALSE(b->LeaderTerm().has_value());
  auto key = etcd_->Get(LeaderElection::LeaderKey("ha-test"));
  ASSERT_TRUE(key.ok() && key->kv.has_value());
  EXPECT_EQ(key->kv->value, "a:7300");
  EXPECT_EQ(key->kv->create_revision, first_term);

  absl::Time resigned = absl::Now();
  ASSERT_TRUE(a->Resign().ok());
  EXPECT_FALSE(a->LeaderTerm().has_value());  // at once, before anyone else leads
  ASSERT_TRUE(WaitUntil([&] { return b->LeaderTerm().has_value(); }, absl::Seconds(20)));
  absl::Duration handover = absl::Now() - resigned;
  EXPECT_GT(*b->LeaderTerm(), first_term);
  EXPECT_LT(handover, absl::Seconds(2)) << "b polls the key every 100 ms";
  ASSERT_TRUE(WaitUntil([&] { return a->View().leader_address == "b:7300"; }, absl::Seconds(20)));
  EXPECT_FALSE(a->LeaderTerm().has_value());
  absl::MutexLock lock(&ea.mutex);
  ASSERT_EQ(ea.deposed.size(), 1u);
  EXPECT_EQ(ea.deposed[0], "resigned");
  EXPECT_EQ(ea.elected, std::vector<int64_t>{first_term});
  std::printf("handover after Resign: %s\n", absl::FormatDuration(handover).c_str());
}

TEST_F(LeaderElectionTest, AStoppedLeaderIsReplacedAndALostKeyDeposes) {
  Events ea, eb;
  auto a = Candidate("a:7300", &ea);
  ASSERT_TRUE(WaitUntil([&] { return a->LeaderTerm().has_value(); }, absl::Seconds(20)));
  auto b = Candidate("b:7300", &eb);
  int64_t first_term = *a->LeaderTerm();
  a->Stop();
  ASSERT_TRUE(WaitUntil([&] { return b->LeaderTerm().has_value(); }, absl::Seconds(20)));
  int64_t second_term = *b->LeaderTerm();
  EXPECT_GT(second_term, first_term);

  // Someone deletes the leader key by hand: b notices at its next renewal
  // and stops leading; it then campaigns again, under a newer term.
  ASSERT_EQ(*etcd_->Delete(LeaderElection::LeaderKey("ha-test")), 1);
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::MutexLock lock(&eb.mutex);
        return !eb.deposed.empty();
      },
      absl::Seconds(20)));
  ASSERT_TRUE(
      WaitUntil([&] { return b->LeaderTerm().value_or(0) > second_term; }, absl::Seconds(20)));
}

TEST_F(LeaderElectionTest, ALeaderCutOffFromEtcdStopsAcknowledgingWithinItsLease) {
  Events ea;
  auto a = Candidate("a:7300", &ea);
  ASSERT_TRUE(WaitUntil([&] { return a->LeaderTerm().has_value(); }, absl::Seconds(20)));
  int64_t first_term = *a->LeaderTerm();
  ASSERT_EQ(kill(member_->pid(), SIGSTOP), 0);  // etcd hangs: renewals time out
  absl::Time cut = absl::Now();
  ASSERT_TRUE(WaitUntil([&] { return !a->LeaderTerm().has_value(); }, absl::Seconds(20)));
  absl::Duration fenced = absl::Now() - cut;
  // Lease TTL 3 s minus the 500 ms margin, from the last renewal's send.
  EXPECT_LT(fenced, absl::Seconds(3)) << "a acknowledged past its lease";
  ASSERT_EQ(kill(member_->pid(), SIGCONT), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return a->LeaderTerm().value_or(0) > first_term; }, absl::Seconds(30)));
  std::printf("stopped acknowledging %s after etcd hung\n", absl::FormatDuration(fenced).c_str());
}

TEST_F(LeaderElectionTest, BadOptionsAreRefused) {
  ElectionOptions options;
  options.address = "a:7300";
  options.pool = "no/slash";
  EXPECT_FALSE(LeaderElection::Start(etcd_.get(), options).ok());
  options.pool = "ok";
  options.address = "";
  EXPECT_FALSE(LeaderElection::Start(etcd_.get(), options).ok());
  options.address = "a:7300";
  options.lease_ttl = absl::Seconds(2);
  options.safety_margin = absl::Seconds(1);
  options.renew_interval = absl::Seconds(1);  // 2 - 1 < 2 x 1
  EXPECT_FALSE(LeaderElection::Start(etcd_.get(), options).ok());
}

}  // namespace
}  // namespace unipool
