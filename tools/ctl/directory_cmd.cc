// unipoolctl directory status, directory step-down: the directories of a
// replicated pool (unipool-directory --etcd; docs/operations.md).
//
// status asks every address of --directory on its own. Only the leader
// listens on its client address, and it reports itself and each standby
// (role, term, position, lag); an address that does not answer and that the
// leader does not know as a standby is unreachable. A lone directory (no
// etcd) is one entry, the leader in term 0.
//
// step-down asks the leader to hand over, then waits for another directory
// to lead in a higher term and prints how long that took.
#include <algorithm>
#include <cstdio>
#include <optional>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "output.h"
#include "unipool/web/pool_view.h"

namespace unipool::ctl {
namespace {

constexpr char kUsage[] = "directory status [--json] | directory step-down";
// step-down waits this long for the next leader.
constexpr absl::Duration kHandoverBound = absl::Seconds(30);
constexpr absl::Duration kHandoverPoll = absl::Milliseconds(10);

// What one address said.
struct Answer {
  std::string address;
  std::optional<PoolState> state;  // nothing: it did not answer
  absl::Status error;
};

std::vector<std::string> Addresses(const Context& ctx) {
  return absl::StrSplit(ctx.directory(), ',', absl::SkipEmpty());
}

std::vector<Answer> AskEach(const Context& ctx) {
  std::vector<Answer> answers;
  for (const std::string& address : Addresses(ctx)) {
    Answer a{.address = address};
    absl::StatusOr<std::unique_ptr<Admin>> admin = ctx.AdminAt(address);
    absl::StatusOr<PoolState> state = admin.ok() ? (*admin)->State() : admin.status();
    if (state.ok()) {
      a.state = *std::move(state);
    } else {
      a.error = state.status();
    }
    answers.push_back(std::move(a));
  }
  return answers;
}

// Its own entry: a lone directory is the leader of term 0.
DirectoryState Self(const Answer& a) {
  DirectoryState self{.address = a.address, .role = DirectoryRole::kLeader};
  if (!a.state->directories.empty()) {
    self = a.state->directories.front();
    self.address = a.address;
  }
  return self;
}

// The answer of the highest term (the others, if any, are deposed leaders
// that have not noticed yet); null when none answered.
const Answer* Leader(const std::vector<Answer>& answers) {
  const Answer* leader = nullptr;
  for (const Answer& a : answers) {
    if (a.state.has_value() && (leader == nullptr || Self(a).term > Self(*leader).term)) {
      leader = &a;
    }
  }
  return leader;
}

// The leader among the answers, or why there is none.
absl::StatusOr<const Answer*> FindLeader(const Context& ctx, const std::vector<Answer>& answers) {
  const Answer* leader = Leader(answers);
  if (leader == nullptr) {
    // Not a directory down (a bad key file, a refused token): that is the error.
    const absl::Status& last = answers.back().error;
    if (!absl::IsUnavailable(last) && !absl::IsDeadlineExceeded(last)) {
      return absl::Status(last.code(),
                          absl::StrFormat("%s: %s", answers.back().address, last.message()));
    }
    return absl::UnavailableError(absl::StrFormat("no directory of %s answered (%s: %s)",
                                                  ctx.directory(), answers.back().address,
                                                  answers.back().error.message()));
  }
  return leader;
}

// One entry per address given, in order, then the leader's standbys that
// no address named. A standby whose client address the leader does not know
// (it never answered this leader, or runs a version that does not say) is
// paired with an address that did not answer, in order, when there are as
// many of each: every directory is then one entry.
std::vector<DirectoryState> Merge(const std::vector<Answer>& answers, const Answer* leader) {
  std::vector<DirectoryState> standbys, unnamed;
  if (leader != nullptr && leader->state->directories.size() > 1) {
    for (auto it = leader->state->directories.begin() + 1; it != leader->state->directories.end();
         ++it) {
      (it->address.empty() ? unnamed : standbys).push_back(*it);
    }
  }
  std::vector<DirectoryState> merged;
  std::vector<size_t> silent;  // entries of addresses nobody answered for
  for (const Answer& a : answers) {
    auto known = std::find_if(standbys.begin(), standbys.end(),
                              [&](const DirectoryState& d) { return d.address == a.address; });
    if (a.state.has_value()) {
      merged.push_back(Self(a));
    } else if (known != standbys.end()) {
      merged.push_back(*known);
    } else {
      silent.push_back(merged.size());
      merged.push_back({.address = a.address, .role = DirectoryRole::kUnreachable});
    }
    if (known != standbys.end()) standbys.erase(known);
  }
  if (silent.size() == unnamed.size()) {
    for (size_t i = 0; i < silent.size(); ++i) {
      unnamed[i].address = merged[silent[i]].address;
      merged[silent[i]] = unnamed[i];
    }
    unnamed.clear();
  }
  merged.insert(merged.end(), standbys.begin(), standbys.end());
  merged.insert(merged.end(), unnamed.begin(), unnamed.end());
  return merged;
}

void PrintTable(const std::vector<DirectoryState>& directories, bool unreplicated) {
  Table t;
  t.Column("ADDRESS");
  t.Column("ROLE");
  t.Column("TERM", true);
  t.Column("POSITION", true);
  t.Column("LAG", true);
  t.Column("REPLICATION");
  for (const DirectoryState& d : directories) {
    t.Row({d.address.empty() ? "-" : d.address, std::string(DirectoryRoleName(d.role)),
           absl::StrFormat("%d", d.term), absl::StrFormat("%u", d.position),
           absl::StrFormat("%u", d.lag),
           d.replication_address.empty() ? "-" : d.replication_address});
  }
  t.Print();
  if (unreplicated) {
    std::printf(
        "unreplicated: the leader acknowledges writes no standby has (--allow-unreplicated)\n");
  }
}

int Status(Context& ctx) {
  std::vector<Answer> answers = AskEach(ctx);
  absl::StatusOr<const Answer*> found = FindLeader(ctx, answers);
  if (!found.ok()) return Fail(found.status());
  const Answer* leader = *found;
  std::vector<DirectoryState> merged = Merge(answers, leader);
  bool unreplicated = leader->state->unreplicated;
  if (ctx.json()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const DirectoryState& d : merged) list.push_back(DirectoryJson(d));
    PrintJson({{"leader", leader->address},
               {"term", Self(*leader).term},
               {"unreplicated", unreplicated},
               {"directories", std::move(list)}});
    return kExitOk;
  }
  PrintTable(merged, unreplicated);
  return kExitOk;
}

int StepDown(Context& ctx) {
  std::vector<Answer> answers = AskEach(ctx);
  absl::StatusOr<const Answer*> found = FindLeader(ctx, answers);
  if (!found.ok()) return Fail(found.status());
  const Answer* leader = *found;
  const std::string old_leader = leader->address;
  const int64_t old_term = Self(*leader).term;
  absl::StatusOr<std::unique_ptr<Admin>> admin = ctx.AdminAt(old_leader);
  absl::Time start = absl::Now();
  absl::Status asked = admin.ok() ? (*admin)->StepDown() : admin.status();
  if (!asked.ok()) return Fail(absl::StrFormat("%s: %s", old_leader, asked.message()));
  std::fprintf(stderr, "unipoolctl: %s (term %lld) is handing over\n", old_leader.c_str(),
               static_cast<long long>(old_term));
  while (absl::Now() - start < kHandoverBound) {
    for (const std::string& address : Addresses(ctx)) {
      if (address == old_leader) continue;
      absl::StatusOr<std::unique_ptr<Admin>> next = ctx.AdminAt(address);
      if (!next.ok()) continue;
      absl::StatusOr<PoolState> state = (*next)->State();
      if (!state.ok() || state->directories.empty()) continue;
      const DirectoryState& self = state->directories.front();
      if (self.role == DirectoryRole::kLeader && self.term > old_term) {
        std::printf("%s leads in term %lld: handover took %.0f ms\n", address.c_str(),
                    static_cast<long long>(self.term),
                    absl::ToDoubleMilliseconds(absl::Now() - start));
        return kExitOk;
      }
    }
    absl::SleepFor(kHandoverPoll);
  }
  return Fail(absl::StrFormat("%s stepped down, but no other directory of %s leads after %s",
                              old_leader, ctx.directory(), absl::FormatDuration(kHandoverBound)));
}

}  // namespace

int DirectoryCommand(Context& ctx) {
  const std::vector<std::string>& args = ctx.args();
  if (args.size() != 1) return UsageError(kUsage);
  if (args[0] == "status") return Status(ctx);
  if (args[0] == "step-down") return StepDown(ctx);
  return UsageError(kUsage);
}

}  // namespace unipool::ctl
