// `unipoolctl directory status` and `directory step-down` against real
// replicated directories (issue 24): a real etcd, two unipool-directory
// --etcd, one node, all on loopback.
//
// status: the leader and the standby as such, then, once the leader is
// killed, the other as leader in a higher term and the dead one
// unreachable. step-down under load (putting and reading threads): no
// failed request, and the handover time printed. Bad usage exits 2 and a
// failed operation 1.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "ha_cluster.h"
#include "ha_load.h"
#include "nlohmann/json.hpp"
#include "unipool/client.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

using ::nlohmann::json;

RunResult Ctl(const std::string& directories, std::vector<std::string> args) {
  std::vector<std::string> argv = {BesideTest("unipoolctl"), "--directory", directories};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

// `directory status --json`, parsed; null when it failed.
json Status(const std::string& directories) {
  RunResult r = Ctl(directories, {"--json", "directory", "status"});
  if (r.exit_code != 0) {
    std::fprintf(stderr, "directory status exited %d: %s", r.exit_code, r.err.c_str());
    return nullptr;
  }
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

// Waits until directory status names `address` with `role`; the last
// document read.
json WaitForRole(const std::string& directories, const std::string& address,
                 const std::string& role) {
  json last;
  WaitUntil(
      [&] {
        last = Status(directories);
        if (!last.is_object()) return false;
        for (const json& d : last["directories"]) {
          if (d["address"] == address && d["role"] == role) return true;
        }
        return false;
      },
      absl::Seconds(60));
  return last;
}

// Two directories, directory 0 leading with directory 1 in sync. With
// --allow-unreplicated: a leader left alone (its standby killed or stepped
// down) writes on.
absl::StatusOr<std::unique_ptr<HaCluster>> StartInSync(const std::string& dir) {
  HaClusterOptions options;
  options.directory_flags = {"--allow-unreplicated"};
  auto cluster = HaCluster::Start(dir, options);
  if (cluster.ok() && !WaitForFileText((*cluster)->log(0), "in sync at write", absl::Seconds(60))) {
    return absl::UnavailableError("the standby did not get in sync");
  }
  return cluster;
}

TEST(DirectoryCliTest, StatusShowsTheLeaderAndTheStandbyThenTheSurvivorLeads) {
  TestDir dir("status");
  auto cluster = StartInSync(dir.path());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  HaCluster& ha = **cluster;
  const std::string list = ha.directory_list();

  json before = WaitForRole(list, ha.listen_address(1), "standby");
  ASSERT_TRUE(before.is_object());
  ASSERT_EQ(before["directories"].size(), 2u) << before.dump();
  const json& leader = before["directories"][0];
  EXPECT_EQ(leader["address"], ha.listen_address(0));
  EXPECT_EQ(leader["role"], "leader");
  EXPECT_GT(leader["term"].get<int64_t>(), 0);
  EXPECT_EQ(before["leader"], ha.listen_address(0));
  const json& standby = before["directories"][1];
  EXPECT_EQ(standby["replication_address"], ha.replication_address(1));
  EXPECT_TRUE(standby.contains("lag"));
  EXPECT_EQ(before["unreplicated"], false);

  ha.Kill(0);
  ASSERT_EQ(ha.WaitForLeader(0, absl::Seconds(60)), 1);
  json after = WaitForRole(list, ha.listen_address(1), "leader");
  ASSERT_TRUE(after.is_object());
  ASSERT_EQ(after["directories"].size(), 2u) << after.dump();
  EXPECT_EQ(after["directories"][0]["address"], ha.listen_address(0));
  EXPECT_EQ(after["directories"][0]["role"], "unreachable");
  EXPECT_GT(after["directories"][1]["term"].get<int64_t>(), leader["term"].get<int64_t>());
  // Writes go on without a standby (--allow-unreplicated), and status says so.
  EXPECT_EQ(after["unreplicated"], true) << after.dump();

  RunResult table = Ctl(list, {"directory", "status"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, "unreachable")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "unreplicated")) << table.out;
}

TEST(DirectoryCliTest, StepDownUnderLoadFailsNoRequest) {
  TestDir dir("stepdown");
  // The stepped-down directory exits: the new leader writes on alone until
  // it is back.
  auto cluster = StartInSync(dir.path());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  HaCluster& ha = **cluster;
  const std::string list = ha.directory_list();

  ClientOptions client_options;
  client_options.directory = list;
  auto client = Client::Connect(client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  Load load;
  std::vector<std::thread> threads = StartWork(client->get(), load);
  ASSERT_TRUE(EveryThreadCarriesOn(load, Snapshot(load), 50));

  RunResult stepped = Ctl(list, {"directory", "step-down"});
  std::vector<uint64_t> at_handover = Snapshot(load);
  EXPECT_EQ(stepped.exit_code, 0) << stepped.err;
  EXPECT_TRUE(absl::StrContains(stepped.out, "handover took")) << stepped.out;
  EXPECT_EQ(ha.WaitForExit(0, absl::Seconds(30)), 0) << "the old leader did not exit 0";
  EXPECT_TRUE(EveryThreadCarriesOn(load, at_handover, 50)) << "a thread stopped after handover";

  int lost = FinishLoad(**client, load, threads, "step-down: " + stepped.out);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(load.failed_puts.load(), 0);
  EXPECT_EQ(load.failed_gets.load(), 0);
  EXPECT_EQ(load.wrong_gets.load(), 0);

  // Started again (as after an upgrade), it is a standby of the new leader.
  ASSERT_TRUE(ha.Restart(0).ok());
  json back = WaitForRole(list, ha.listen_address(0), "standby");
  ASSERT_TRUE(back.is_object());
  EXPECT_EQ(back["leader"], ha.listen_address(1)) << back.dump();
}

// A lone directory (no etcd) is one entry, the leader of term 0; it has no
// one to hand over to, and a client token may not ask anyway.
TEST(DirectoryCliTest, ALoneDirectoryLeadsAloneAndOnlyAnAdminMayAskItToStepDown) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 16 << 20;
  auto cluster = StartTestCluster("lone", options, TestAuth::kClusterKey);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string address = (*cluster)->directory_address();
  const std::string key = "--key-file=" + (*cluster)->key_file();

  RunResult status = Ctl(address, {key, "--json", "directory", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json lone = json::parse(status.out, nullptr, false);
  ASSERT_EQ(lone["directories"].size(), 1u) << status.out;
  EXPECT_EQ(lone["directories"][0]["address"], address);
  EXPECT_EQ(lone["directories"][0]["role"], "leader");
  EXPECT_EQ(lone["directories"][0]["term"], 0);

  RunResult refused = Ctl(address, {key, "directory", "step-down"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "not replicated")) << refused.err;

  RunResult token = Ctl(address, {key, "token", "create", "--role", "client"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  std::string token_file = (*cluster)->work_dir() + "/client.token";
  {
    std::ofstream out(token_file);
    out << token.out;
  }
  std::filesystem::permissions(
      token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  RunResult denied = Ctl(address, {"--key-file=" + token_file, "directory", "step-down"});
  EXPECT_EQ(denied.exit_code, 1) << denied.err;
  EXPECT_TRUE(absl::StrContains(denied.err, "only an admin")) << denied.err;
}

// unipoolctl cluster up --directories 3: a local etcd, a leader and two
// standbys that the status command sees as such; cluster down stops it all.
TEST(DirectoryCliTest, ClusterUpStartsThreeDirectoriesAndClusterDownStopsThem) {
  TestDir dir("up");
  const std::string work = dir.path() + "/cluster";
  Background up(
      {BesideTest("unipoolctl"), "cluster", "up", "--directories", "3", "--nodes", "1",
       "--pool-size", "16MiB", "--listen", "127.0.0.1:0", "--http", "", "--work-dir", work},
      dir.path() + "/up.log");
  std::string out = up.ReadUntil("stops the cluster", absl::Seconds(120));
  ASSERT_TRUE(absl::StrContains(out, "stops the cluster")) << out;
  size_t at = out.find("directory  ");
  ASSERT_NE(at, std::string::npos) << out;
  std::string list = out.substr(at + 11, out.find('\n', at) - at - 11);
  ASSERT_EQ(std::count(list.begin(), list.end(), ','), 2) << list;

  json status;
  ASSERT_TRUE(WaitUntil(
      [&] {
        status = Status(list);
        if (!status.is_object() || status["directories"].size() != 3) return false;
        int standbys = 0;
        for (const json& d : status["directories"]) standbys += d["role"] == "standby" ? 1 : 0;
        return standbys == 2;
      },
      absl::Seconds(60)))
      << status.dump();
  // Started together, any of them may have won the election.
  EXPECT_TRUE(absl::StrContains(list, status["leader"].get<std::string>())) << status.dump();

  RunResult down = Ctl(list, {"cluster", "down", "--work-dir", work});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(up.Stop(0, absl::Seconds(30)), 0);
  RunResult gone = Ctl(list, {"directory", "status"});
  EXPECT_EQ(gone.exit_code, 1) << gone.out;
  RunResult again = Ctl(list, {"cluster", "down", "--work-dir", work});
  EXPECT_EQ(again.exit_code, 1) << again.err;
}

TEST(DirectoryCliTest, BadUsageExits2AndAFailedOperation1) {
  for (std::vector<std::string> args : {std::vector<std::string>{"directory"},
                                        {"directory", "frobnicate"},
                                        {"directory", "status", "extra"}}) {
    RunResult r = Ctl("127.0.0.1:1", args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "usage: unipoolctl directory")) << r.err;
  }
  // Nothing listens on port 1: no directory answers.
  for (const char* command : {"status", "step-down"}) {
    RunResult r = Ctl("127.0.0.1:1,127.0.0.1:2", {"directory", command});
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "unipoolctl: no directory of")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace unipool::testing
