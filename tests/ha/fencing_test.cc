// Fencing with real processes: two candidates (election_candidate) on a
// real etcd. The leader is paused with SIGSTOP past its lease; the other is
// elected with a higher term; the old leader, continued, acknowledged
// nothing after the new leader's election (and nothing after its own
// deadline).
#include <signal.h>

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "etcd_member.h"
#include "gtest/gtest.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"

namespace unipool::testing {
namespace {

// The fields of the last line of `out` that starts with `word`.
std::vector<int64_t> LastLine(const std::string& out, absl::string_view word) {
  std::vector<int64_t> fields;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.empty() || parts[0] != word) continue;
    fields.clear();
    for (size_t i = 1; i < parts.size(); ++i) {
      int64_t v;
      if (absl::SimpleAtoi(parts[i], &v)) fields.push_back(v);
    }
  }
  return fields;
}

std::string Candidate() {
  return (std::filesystem::path(program_invocation_name).parent_path() / "election_candidate")
      .string();
}

TEST(FencingTest, APausedLeaderAcknowledgesNothingOnceAnotherIsElected) {
  TestDir dir("fencing");
  auto etcd = EtcdMember::Start(dir.path());
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  const std::string ttl = "3";
  Background a({Candidate(), (*etcd)->url(), "a:7300", ttl}, dir.File("a.log"));
  std::string a_out = a.ReadUntil("acking", absl::Seconds(30));
  ASSERT_FALSE(a_out.empty()) << "a was never elected";
  int64_t a_term = LastLine(a_out, "acking").at(0);
  Background b({Candidate(), (*etcd)->url(), "b:7300", ttl}, dir.File("b.log"));

  ASSERT_EQ(kill(a.pid(), SIGSTOP), 0);
  std::string b_out = b.ReadUntil("elected", absl::Seconds(30));
  ASSERT_FALSE(b_out.empty()) << "b was never elected";
  std::vector<int64_t> b_elected = LastLine(b_out, "elected");
  EXPECT_GT(b_elected.at(0), a_term);

  ASSERT_EQ(kill(a.pid(), SIGCONT), 0);
  // Both lines come as a notices: "acked" from the acknowledging loop,
  // "deposed" from the election's callback.
  std::string acked_out = a.ReadUntil("acked", absl::Seconds(30));
  ASSERT_FALSE(acked_out.empty()) << "a never stopped acknowledging";
  a_out = a.ReadUntil("deposed", absl::Seconds(30));
  ASSERT_FALSE(a_out.empty()) << "a never noticed it was deposed";
  std::vector<int64_t> acked = LastLine(a_out, "acked");
  ASSERT_EQ(acked.size(), 3u) << a_out;
  EXPECT_EQ(acked[0], a_term);
  EXPECT_LE(acked[1], acked[2]);
  // a stopped at least its safety margin (500 ms) before etcd could let b in.
  EXPECT_GE(b_elected.at(1) - acked[2], 500'000'000) << "a acknowledged too close to b's election";
  std::printf("a's last acknowledgement %.3f s before b's election\n",
              (b_elected.at(1) - acked[2]) / 1e9);
  EXPECT_EQ(a.Stop(SIGKILL, absl::Seconds(10)), -1);
}

}  // namespace
}  // namespace unipool::testing
