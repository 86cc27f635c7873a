// Replicated directories under load (issue 24), real processes on loopback:
// a real etcd, two unipool-directory --etcd, one node, and a client given
// both directories' addresses, with putting and reading threads.
//
// The leader is SIGKILLed; the standby is elected and serves the same
// catalog; the old leader, restarted, comes back as a standby and catches
// up; then the second leader is killed in turn. No acknowledged put may be
// lost, every thread must carry on after each failover, and the longest
// stall a thread saw is printed.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "ha_cluster.h"
#include "ha_load.h"
#include "unipool/client.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

TEST(FailoverTest, KilledLeadersLoseNoAcknowledgedPutAndTheOldLeaderCatchesUp) {
  TestDir dir("failover");
  HaClusterOptions options;
  // After a failover the new leader has no standby until the old one is
  // back: writes go on meanwhile.
  options.directory_flags = {"--allow-unreplicated"};
  auto cluster = HaCluster::Start(dir.path(), options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  HaCluster& ha = **cluster;
  ASSERT_TRUE(WaitForFileText(ha.log(0), "in sync at write", absl::Seconds(60)))
      << "directory 1 never became directory 0's standby";

  ClientOptions client_options;
  client_options.directory = ha.directory_list();
  client_options.directory_retry = absl::Seconds(60);
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  Load load;
  std::vector<std::thread> threads = StartWork(client->get(), load);

  ASSERT_TRUE(EveryThreadCarriesOn(load, Snapshot(load), 50));
  ha.Kill(0);
  std::vector<uint64_t> at_kill = Snapshot(load);
  EXPECT_EQ(ha.WaitForLeader(0, absl::Seconds(60)), 1) << "directory 1 was not elected";
  EXPECT_TRUE(EveryThreadCarriesOn(load, at_kill, 50)) << "a thread stopped after the failover";

  // The killed leader comes back as directory 1's standby and catches up.
  ASSERT_TRUE(ha.Restart(0).ok());
  EXPECT_TRUE(WaitForFileText(ha.log(1), "in sync at write", absl::Seconds(60)))
      << "directory 0 never caught up";
  ASSERT_TRUE(EveryThreadCarriesOn(load, Snapshot(load), 50));
  ha.Kill(1);
  at_kill = Snapshot(load);
  EXPECT_EQ(ha.WaitForLeader(1, absl::Seconds(60)), 0) << "directory 0 was not elected";
  EXPECT_TRUE(EveryThreadCarriesOn(load, at_kill, 50)) << "a thread stopped after the failover";

  int lost = FinishLoad(**client, load, threads, "two failovers");
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(load.wrong_gets.load(), 0);
  // A put in flight at a kill may be reported failed (and retried by its
  // caller); at most one per thread per failover.
  EXPECT_LE(load.failed_puts.load(), 2 * kThreads);
  EXPECT_LE(load.failed_gets.load(), 2 * kThreads);
}

}  // namespace
}  // namespace unipool::testing

namespace unipool::testing {
namespace {

// The leader is paused (SIGSTOP) until the standby is elected, then
// continued: its lease ran out while it was stopped, so it acknowledges
// nothing more (the writes it was in the middle of fail, and its clients
// retry them on the new leader), and it ends itself to come back as a
// standby. Nothing it acknowledged is lost.
TEST(FailoverTest, APausedLeaderAcknowledgesNothingOnceContinuedAndItsClientsMove) {
  TestDir dir("paused-leader");
  HaClusterOptions options;
  options.directory_flags = {"--allow-unreplicated"};
  auto cluster = HaCluster::Start(dir.path(), options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  HaCluster& ha = **cluster;
  ASSERT_TRUE(WaitForFileText(ha.log(0), "in sync at write", absl::Seconds(60)));

  ClientOptions client_options;
  client_options.directory = ha.directory_list();
  client_options.directory_retry = absl::Seconds(60);
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  Load load;
  std::vector<std::thread> threads = StartWork(client->get(), load);
  ASSERT_TRUE(EveryThreadCarriesOn(load, Snapshot(load), 50));

  ha.Pause(0);
  EXPECT_EQ(ha.WaitForLeader(0, absl::Seconds(60)), 1) << "directory 1 was not elected";
  ASSERT_TRUE(WaitForFileText(ha.log(1), "leading in term", absl::Seconds(60)));
  std::vector<uint64_t> at_resume = Snapshot(load);
  ha.Resume(0);
  EXPECT_EQ(ha.WaitForExit(0, absl::Seconds(60)), 1) << "the old leader did not end itself";
  EXPECT_TRUE(WaitForFileText(ha.log(0), "E directory: deposed", absl::Seconds(1)));
  EXPECT_TRUE(EveryThreadCarriesOn(load, at_resume, 50)) << "a thread stopped after the failover";

  int lost = FinishLoad(**client, load, threads, "paused leader");
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(load.wrong_gets.load(), 0);
  EXPECT_LE(load.failed_puts.load(), kThreads);
}

}  // namespace
}  // namespace unipool::testing

namespace unipool::testing {
namespace {

// A planned handover (the leader stopped with SIGTERM, as a service manager
// does for an upgrade): it finishes what it was answering, resigns, and the
// standby takes over; no request fails. The longest stall is the handover's
// time as the threads saw it.
TEST(FailoverTest, AStoppedLeaderHandsOverWithNoFailedRequest) {
  TestDir dir("handover");
  HaClusterOptions options;
  options.directory_flags = {"--allow-unreplicated"};
  auto cluster = HaCluster::Start(dir.path(), options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  HaCluster& ha = **cluster;
  ASSERT_TRUE(WaitForFileText(ha.log(0), "in sync at write", absl::Seconds(60)));
  // A client sent to the standby by mistake is told where the leader is.
  ClientOptions astray;
  astray.directory = ha.replication_address(1);
  auto refused = Client::Connect(astray);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(
      refused.status().message(),
      "not the leader: this directory is a standby; the leader is " + ha.listen_address(0)))
      << refused.status();

  ClientOptions client_options;
  client_options.directory = ha.directory_list();
  auto client = Client::Connect(client_options);  // the default retry
  ASSERT_TRUE(client.ok()) << client.status();
  Load load;
  std::vector<std::thread> threads = StartWork(client->get(), load);
  ASSERT_TRUE(EveryThreadCarriesOn(load, Snapshot(load), 50));

  EXPECT_EQ(ha.Terminate(0, absl::Seconds(30)), 0);
  std::vector<uint64_t> at_stop = Snapshot(load);
  EXPECT_EQ(ha.WaitForLeader(0, absl::Seconds(60)), 1) << "directory 1 was not elected";
  EXPECT_TRUE(EveryThreadCarriesOn(load, at_stop, 50)) << "a thread stopped after the handover";

  int lost = FinishLoad(**client, load, threads, "handover");
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(load.failed_puts.load(), 0);
  EXPECT_EQ(load.failed_gets.load(), 0);
}

}  // namespace
}  // namespace unipool::testing

namespace unipool::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Puts keys `first`..`first + count - 1` of `prefix`; fails the test on an error.
void PutKeys(Client& client, const std::string& prefix, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    std::string key = absl::StrCat(prefix, i);
    ASSERT_TRUE(client.Put(key, PageBytes(key, kValueBytes)).ok()) << key;
  }
}

// A standby that was down catches up: from the leader's log when it holds
// the writes missed, else (the log trimmed past them) from a snapshot. Then
// the leader is killed and the standby serves every key.
TEST(FailoverTest, AStandbyThatWasDownCatchesUpFromTheLogOrASnapshot) {
  TestDir dir("catch-up");
  HaClusterOptions options;
  options.directory_flags = {"--allow-unreplicated", "--replication-log=64"};
  auto cluster = HaCluster::Start(dir.path(), options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  HaCluster& ha = **cluster;
  ASSERT_TRUE(WaitForFileText(ha.log(0), "in sync at write", absl::Seconds(60)));
  ClientOptions client_options;
  client_options.directory = ha.directory_list();
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  PutKeys(**client, "before-", 0, 20);

  // Down for a few writes: the log has them.
  ha.Kill(1);
  PutKeys(**client, "few-", 0, 10);
  ASSERT_TRUE(ha.Restart(1).ok());
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(ReadFile(ha.log(0)), "out of sync"); }));
  ASSERT_TRUE(WaitUntil([&] {
    std::string log = ReadFile(ha.log(0));
    return log.rfind("in sync at write") > log.rfind("out of sync");
  })) << "the standby never caught up from the log";
  EXPECT_FALSE(absl::StrContains(ReadFile(ha.log(0)), "sending a snapshot"));

  // Down for more writes than the log keeps: a snapshot.
  ha.Kill(1);
  PutKeys(**client, "many-", 0, 100);
  ASSERT_TRUE(ha.Restart(1).ok());
  EXPECT_TRUE(WaitForFileText(ha.log(0), "sending a snapshot", absl::Seconds(60)));
  ASSERT_TRUE(WaitForFileText(ha.log(0), "snapshot of", absl::Seconds(60)));
  ASSERT_TRUE(WaitUntil([&] {
    std::string log = ReadFile(ha.log(0));
    return log.rfind("in sync at write") > log.rfind("snapshot of");
  })) << "the standby never caught up after the snapshot";
  PutKeys(**client, "after-", 0, 5);

  ha.Kill(0);
  ASSERT_EQ(ha.WaitForLeader(0, absl::Seconds(60)), 1);
  int missing = 0;
  for (const auto& [prefix, count] : std::vector<std::pair<std::string, int>>{
           {"before-", 20}, {"few-", 10}, {"many-", 100}, {"after-", 5}}) {
    for (int i = 0; i < count; ++i) {
      std::string key = absl::StrCat(prefix, i);
      absl::StatusOr<std::vector<uint8_t>> got = (*client)->Get(key);
      if (!got.ok() || *got != PageBytes(key, kValueBytes)) ++missing;
    }
  }
  EXPECT_EQ(missing, 0);
}

}  // namespace
}  // namespace unipool::testing
