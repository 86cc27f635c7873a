#include "unipool/election/election_state.h"

#include "absl/strings/str_format.h"

namespace unipool {

absl::Status ElectionState::BecomeLeader(int64_t term, absl::Time sent_at, absl::Duration ttl,
                                         absl::Time now) {
  if (term <= highest_term_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("term %d is not newer than term %d, already seen: a stale election result",
                        term, highest_term_));
  }
  absl::Time deadline = sent_at + ttl - margin_;
  if (deadline <= now) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the lease (TTL %s, requested %s ago) leaves no time to lead with a %s margin",
        absl::FormatDuration(ttl), absl::FormatDuration(now - sent_at),
        absl::FormatDuration(margin_)));
  }
  role_ = ElectionRole::kLeader;
  term_ = term;
  highest_term_ = term;
  deadline_ = deadline;
  return absl::OkStatus();
}

void ElectionState::Renewed(absl::Time sent_at, absl::Duration ttl, absl::Time now) {
  if (!MayAcknowledge(now)) return;
  deadline_ = std::max(deadline_, sent_at + ttl - margin_);
}

std::optional<int64_t> ElectionState::ExpireIfDue(absl::Time now) {
  if (role_ != ElectionRole::kLeader || now < deadline_) return std::nullopt;
  return StepDown();
}

std::optional<int64_t> ElectionState::StepDown() {
  if (role_ != ElectionRole::kLeader) return std::nullopt;
  int64_t lost = term_;
  role_ = ElectionRole::kCandidate;
  term_ = 0;
  deadline_ = absl::InfinitePast();
  return lost;
}

std::optional<int64_t> ElectionState::Observe(int64_t term, std::string address) {
  if (term < highest_term_) return std::nullopt;  // an older read overtaken by a newer one
  if (term > highest_term_) {
    highest_term_ = term;
    leader_address_ = std::move(address);
  }
  if (role_ == ElectionRole::kLeader && term > term_) return StepDown();
  return std::nullopt;
}

}  // namespace unipool
