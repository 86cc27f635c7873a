// The term and fencing logic of the election (election_state.h), with a
// clock the test moves by hand.
#include "unipool/election/election_state.h"

#include "gtest/gtest.h"

namespace unipool {
namespace {

constexpr absl::Duration kMargin = absl::Milliseconds(500);
constexpr absl::Duration kTtl = absl::Seconds(5);

class ElectionStateTest : public ::testing::Test {
 protected:
  absl::Time t0_ = absl::UnixEpoch() + absl::Hours(1);
  ElectionState state_{kMargin};
};

TEST_F(ElectionStateTest, ALeaderAcknowledgesUntilTtlMinusMarginFromTheGrantsSendTime) {
  // The grant was sent at t0 and answered 300 ms later: the deadline counts
  // from the send, not the answer.
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_ + absl::Milliseconds(300)).ok());
  EXPECT_EQ(state_.term(), 7);
  EXPECT_TRUE(state_.MayAcknowledge(t0_ + absl::Milliseconds(300)));
  EXPECT_TRUE(state_.MayAcknowledge(t0_ + kTtl - kMargin - absl::Microseconds(1)));
  EXPECT_FALSE(state_.MayAcknowledge(t0_ + kTtl - kMargin));
  EXPECT_FALSE(state_.MayAcknowledge(t0_ + kTtl));
}

TEST_F(ElectionStateTest, ARenewalMovesTheDeadlineFromItsSendTimeAndNeverBack) {
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_).ok());
  state_.Renewed(t0_ + absl::Seconds(2), kTtl, t0_ + absl::Seconds(2));
  EXPECT_EQ(state_.deadline(), t0_ + absl::Seconds(2) + kTtl - kMargin);
  // A renewal sent earlier but answered late does not shorten it.
  state_.Renewed(t0_ + absl::Seconds(1), kTtl, t0_ + absl::Seconds(3));
  EXPECT_EQ(state_.deadline(), t0_ + absl::Seconds(2) + kTtl - kMargin);
  EXPECT_TRUE(state_.MayAcknowledge(t0_ + absl::Seconds(6)));
}

TEST_F(ElectionStateTest, ALeaderThatCannotRenewDeposesItselfOnceAtTheDeadline) {
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_).ok());
  EXPECT_FALSE(state_.ExpireIfDue(t0_ + absl::Seconds(4)).has_value());
  // A pause (SIGSTOP) that outlasts the lease: on waking it is over.
  absl::Time woke = t0_ + absl::Seconds(30);
  EXPECT_FALSE(state_.MayAcknowledge(woke));
  EXPECT_EQ(state_.ExpireIfDue(woke), 7);
  EXPECT_EQ(state_.role(), ElectionRole::kCandidate);
  EXPECT_FALSE(state_.ExpireIfDue(woke).has_value());
  // A renewal answered after the fact does not bring it back.
  state_.Renewed(woke, kTtl, woke);
  EXPECT_FALSE(state_.MayAcknowledge(woke + absl::Seconds(1)));
}

TEST_F(ElectionStateTest, ARenewalAnsweredPastTheDeadlineDoesNotReviveTheTerm) {
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_).ok());
  // Sent in time, answered after the deadline (a hung etcd that came back):
  // we stopped acknowledging at the deadline and stay stopped.
  absl::Time answered = t0_ + kTtl;
  state_.Renewed(t0_ + absl::Seconds(4), kTtl, answered);
  EXPECT_FALSE(state_.MayAcknowledge(answered));
  EXPECT_EQ(state_.ExpireIfDue(answered), 7);
}

TEST_F(ElectionStateTest, TheDeposedLeaderStopsBeforeEtcdCouldElectAnother) {
  // etcd receives the last renewal at some time after we sent it; it expires
  // the lease TTL after that receipt at the earliest. Whatever the delay, we
  // stopped at least `margin` earlier.
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_).ok());
  absl::Time sent = t0_ + absl::Seconds(1);
  state_.Renewed(sent, kTtl, sent);
  for (absl::Duration delay : {absl::ZeroDuration(), absl::Milliseconds(1), absl::Seconds(2)}) {
    absl::Time etcd_expiry = sent + delay + kTtl;
    EXPECT_FALSE(state_.MayAcknowledge(etcd_expiry - kMargin)) << delay;
  }
}

TEST_F(ElectionStateTest, TermsOnlyGrowAndAStaleElectionIsRefused) {
  state_.Observe(12, "b:7300");
  EXPECT_EQ(state_.highest_term(), 12);
  EXPECT_EQ(state_.leader_address(), "b:7300");
  EXPECT_FALSE(state_.BecomeLeader(12, t0_, kTtl, t0_).ok());
  EXPECT_FALSE(state_.BecomeLeader(9, t0_, kTtl, t0_).ok());
  EXPECT_EQ(state_.role(), ElectionRole::kCandidate);
  // An older read arriving late changes nothing.
  state_.Observe(11, "a:7300");
  EXPECT_EQ(state_.leader_address(), "b:7300");
  ASSERT_TRUE(state_.BecomeLeader(13, t0_, kTtl, t0_).ok());
  EXPECT_EQ(state_.highest_term(), 13);
}

TEST_F(ElectionStateTest, SeeingAHigherTermDeposesTheLeader) {
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_).ok());
  EXPECT_FALSE(state_.Observe(7, "me:7300").has_value());  // our own key
  EXPECT_EQ(state_.Observe(8, "b:7300"), 7);
  EXPECT_FALSE(state_.MayAcknowledge(t0_));
  EXPECT_EQ(state_.leader_address(), "b:7300");
}

TEST_F(ElectionStateTest, ALeaseThatIsAlreadyOverOrShorterThanTheMarginIsNoElection) {
  EXPECT_FALSE(state_.BecomeLeader(7, t0_, kMargin, t0_).ok());
  EXPECT_FALSE(state_.BecomeLeader(8, t0_, kTtl, t0_ + kTtl).ok());
  EXPECT_EQ(state_.role(), ElectionRole::kCandidate);
}

TEST_F(ElectionStateTest, StepDownEndsAcknowledgementAtOnce) {
  ASSERT_TRUE(state_.BecomeLeader(7, t0_, kTtl, t0_).ok());
  EXPECT_EQ(state_.StepDown(), 7);
  EXPECT_FALSE(state_.MayAcknowledge(t0_));
  EXPECT_FALSE(state_.StepDown().has_value());
  EXPECT_EQ(state_.term(), 0);
}

}  // namespace
}  // namespace unipool
