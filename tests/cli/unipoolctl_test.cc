// unipoolctl against a real local cluster: every subcommand run as the real
// binary (fork/exec), its output, its exit code and its one-line errors.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "unipool/client.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/temp_dir.h"
#include "unipool/testing/test_cluster.h"

namespace unipool {
namespace {

using ::nlohmann::json;
using ::unipool::testing::Background;
using ::unipool::testing::Run;
using ::unipool::testing::RunOnTerminal;
using ::unipool::testing::RunResult;
using ::unipool::testing::StartTestCluster;
using ::unipool::testing::TestCluster;
using ::unipool::testing::TestDir;

constexpr int kNodes = 3;
constexpr uint64_t kPoolSize = 64ull << 20;

std::string CtlPath() { return ExecutableDir() + "/unipoolctl"; }

// (A name of its own: inside a fixture, Run is ::testing::Test::Run.)
RunResult Exec(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
               const std::string& input = "") {
  return Run(argv, env, input);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 131 + (i >> 9));
  return s;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// Every failure is exactly one line on stderr, starting "unipoolctl: ".
void ExpectOneLineError(const RunResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(r.err, "unipoolctl: ")) << r.err;
  EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
}

// An aligned table: every cell of a column starts where its header starts
// (left-aligned) or ends where its header ends (right-aligned), the same way
// on every row.
void ExpectAligned(const std::vector<std::string>& table) {
  ASSERT_GE(table.size(), 2u);
  // Header words are separated by two or more blanks ("LARGEST FREE" is one).
  std::vector<std::pair<size_t, size_t>> columns;  // [first, last] character
  const std::string& header = table[0];
  for (size_t i = 0; i < header.size();) {
    size_t end = header.find("  ", i);
    if (end == std::string::npos) end = header.size();
    columns.emplace_back(i, end - 1);
    i = header.find_first_not_of(' ', end);
    if (i == std::string::npos) break;
  }
  auto blank = [](const std::string& line, size_t at) {
    return at >= line.size() || line[at] == ' ';
  };
  for (size_t c = 0; c < columns.size(); ++c) {
    auto [first, last] = columns[c];
    bool left = true, right = true;
    for (size_t row = 1; row < table.size(); ++row) {
      const std::string& line = table[row];
      left = left && !blank(line, first) && (first == 0 || blank(line, first - 1));
      right = right && !blank(line, last) && blank(line, last + 1);
    }
    EXPECT_TRUE(left || right) << "column '" << header.substr(first, last - first + 1)
                               << "' is not aligned:\n"
                               << absl::StrJoin(table, "\n");
  }
}

class UnipoolctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    LocalClusterOptions options;
    options.nodes = kNodes;
    options.pool_size = kPoolSize;
    // Short read leases: a drain waits for the leased memory it moved away.
    options.directory_flags = {"--lease=1s"};
    auto cluster = StartTestCluster("cli", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  static void TearDownTestSuite() { cluster_.reset(); }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    files_ = std::make_unique<TestDir>("cli-files");
  }
  void TearDown() override { files_.reset(); }

  // unipoolctl --directory <the cluster> ARGS...
  RunResult Ctl(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {CtlPath(), "--directory", cluster_->directory_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return Exec(argv, {}, input);
  }
  std::string File(const std::string& name) { return files_->File(name); }

  // One cluster for the whole suite (every test uses its own keys).
  inline static TestCluster cluster_;
  std::unique_ptr<TestDir> files_;
};

TEST_F(UnipoolctlTest, PutGetRoundTripThroughFilesAndPipes) {
  std::string data = Bytes(3 << 20, 7);
  WriteFile(File("in"), data);
  RunResult put = Ctl({"put", "rt/file", File("in")});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(put.out, "");
  EXPECT_TRUE(absl::StrContains(put.err, "stored rt/file: 3.0 MiB")) << put.err;

  RunResult get = Ctl({"get", "rt/file", File("out")});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(ReadFile(File("out")), data);

  // '-' is stdin for put and stdout for get.
  RunResult put_stdin = Ctl({"put", "rt/stdin", "-"}, "from a pipe");
  ASSERT_EQ(put_stdin.exit_code, 0) << put_stdin.err;
  RunResult get_stdout = Ctl({"get", "rt/stdin", "-"});
  ASSERT_EQ(get_stdout.exit_code, 0) << get_stdout.err;
  EXPECT_EQ(get_stdout.out, "from a pipe");
}

TEST_F(UnipoolctlTest, PutOfAnExistingKeyFailsUnlessReplace) {
  WriteFile(File("a"), "first");
  WriteFile(File("b"), "second");
  ASSERT_EQ(Ctl({"put", "dup/k", File("a")}).exit_code, 0);
  ExpectOneLineError(Ctl({"put", "dup/k", File("b")}), "already exists");
  ASSERT_EQ(Ctl({"put", "dup/k", File("b"), "--replace"}).exit_code, 0);
  EXPECT_EQ(Ctl({"get", "dup/k", "-"}).out, "second");
}

TEST_F(UnipoolctlTest, StatusShowsTotalsAndOneAlignedRowPerNode) {
  WriteFile(File("f"), Bytes(100000, 1));
  ASSERT_EQ(Ctl({"put", "status/one", File("f")}).exit_code, 0);
  RunResult r = Ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 4u + kNodes) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "pool      3/3 nodes up, ")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "of 192.0 MiB")) << lines[0];
  EXPECT_TRUE(
      std::regex_search(lines[1], std::regex(R"(^objects   \d+ stored, \d+ pinned, \d+ leased)")))
      << lines[1];
  EXPECT_TRUE(
      std::regex_search(lines[2], std::regex(R"(puts/s, .* gets/s, hit rate .* evictions)")))
      << lines[2];
  std::vector<std::string> table(lines.end() - (kNodes + 1), lines.end());
  EXPECT_TRUE(std::regex_search(
      table[0],
      std::regex("^NODE +HOST +ADDRESS +STATE +LINK +TRANSPORT +CAPACITY +USED +USE +OBJECTS$")))
      << table[0];
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(std::regex_search(
        table[i + 1], std::regex(absl::StrFormat(
                          R"(^node%d +\S+ +%s +up +ok +tcp\S* +64\.0 MiB +\S+ \S+ +\S+%% +\d+$)", i,
                          cluster_->node_address(i)))))
        << table[i + 1];
  }
  ExpectAligned(table);
}

TEST_F(UnipoolctlTest, StatusJsonIsTheDashboardDocument) {
  WriteFile(File("f"), "json");
  ASSERT_EQ(Ctl({"put", "json/one", File("f")}).exit_code, 0);
  RunResult r = Ctl({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  for (const char* key : {"time_unix_ms", "uptime_seconds", "pool", "totals", "rates", "nodes"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }
  EXPECT_EQ(doc["pool"]["nodes"], kNodes);
  EXPECT_EQ(doc["pool"]["nodes_up"], kNodes);
  EXPECT_EQ(doc["pool"]["capacity"], kNodes * kPoolSize);
  EXPECT_GE(doc["pool"]["objects"].get<int>(), 1);
  EXPECT_GE(doc["totals"]["puts"].get<int>(), 1);
  ASSERT_EQ(doc["nodes"].size(), static_cast<size_t>(kNodes));
  EXPECT_EQ(doc["nodes"][0]["name"], "node0");
  EXPECT_EQ(doc["nodes"][0]["state"], "up");
  EXPECT_EQ(doc["nodes"][0]["link"], "ok");
  EXPECT_EQ(doc["nodes"][0]["address"], cluster_->node_address(0));
  EXPECT_FALSE(doc.contains("history"));
}

TEST_F(UnipoolctlTest, NodesTableAndJson) {
  RunResult r = Ctl({"nodes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u + kNodes) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "ID  NODE   HOST")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "LARGEST FREE")) << lines[0];
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(absl::StrContains(lines[i + 1], absl::StrFormat("node%d", i))) << lines[i + 1];
    EXPECT_TRUE(absl::StrContains(lines[i + 1], cluster_->node_address(i))) << lines[i + 1];
  }
  ExpectAligned(lines);

  RunResult j = Ctl({"nodes", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json doc = json::parse(j.out);
  ASSERT_EQ(doc["nodes"].size(), static_cast<size_t>(kNodes));
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(doc["nodes"][i]["name"], absl::StrFormat("node%d", i));
    EXPECT_EQ(doc["nodes"][i]["capacity"], kPoolSize);
    EXPECT_EQ(doc["nodes"][i]["transports"][0], "tcp");
  }
}

// A pool with no RDMA (this host has no verbs device): the fabric command
// says there is nothing to show, and its JSON lists every node with no
// ports and no client paths. (Its rows with ports and paths are checked on
// Soft-RoCE: tests/rdma_vm.)
TEST_F(UnipoolctlTest, FabricWithoutRdmaSaysSoAndListsTheNodes) {
  RunResult r = Ctl({"fabric"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "no node has an RDMA port")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "no client has reported RDMA paths")) << r.out;
  RunResult j = Ctl({"fabric", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json doc = json::parse(j.out);
  EXPECT_TRUE(doc["clients"].empty());
  ASSERT_EQ(doc["nodes"].size(), static_cast<size_t>(kNodes));
  for (const json& node : doc["nodes"]) EXPECT_TRUE(node["rdma_ports"].empty()) << node;
  EXPECT_EQ(Ctl({"fabric", "extra"}).exit_code, 2);
  RunResult nodes = Ctl({"nodes"});
  EXPECT_TRUE(absl::StrContains(Lines(nodes.out)[0], "RDMA PORTS")) << nodes.out;
}

TEST_F(UnipoolctlTest, LsListsKeysInOrderWithSizeNodeVersionPinnedAge) {
  WriteFile(File("small"), "x");
  WriteFile(File("big"), Bytes(5 << 20, 3));
  for (const char* key : {"ls/b", "ls/a", "ls/c/deep"}) {
    ASSERT_EQ(Ctl({"put", key, File(std::string(key) == "ls/a" ? "big" : "small")}).exit_code, 0);
  }
  ASSERT_EQ(Ctl({"put", "lsx", File("small")}).exit_code, 0);

  RunResult r = Ctl({"ls", "ls/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_TRUE(std::regex_search(lines[0], std::regex("^KEY +SIZE +NODES +VERSION +PINNED +AGE$")))
      << lines[0];
  EXPECT_TRUE(std::regex_search(lines[1], std::regex(R"(^ls/a +5\.0 MiB +node\d +\d+ +no +\d+s$)")))
      << lines[1];
  EXPECT_TRUE(std::regex_search(lines[2], std::regex(R"(^ls/b +1 B +node\d +\d+ +no +\d+s$)")))
      << lines[2];
  EXPECT_TRUE(absl::StartsWith(lines[3], "ls/c/deep")) << lines[3];
  ExpectAligned(lines);
  EXPECT_EQ(r.err, "3 keys, 5.0 MiB\n");

  RunResult limited = Ctl({"ls", "ls/", "--limit", "2"});
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  EXPECT_EQ(Lines(limited.out).size(), 3u) << limited.out;
  EXPECT_TRUE(absl::StrContains(limited.err, "more not shown")) << limited.err;

  RunResult j = Ctl({"ls", "ls/", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json doc = json::parse(j.out);
  ASSERT_EQ(doc["keys"].size(), 3u);
  EXPECT_EQ(doc["keys"][0]["key"], "ls/a");
  EXPECT_EQ(doc["keys"][0]["size"], 5 << 20);
  EXPECT_EQ(doc["keys"][0]["pinned"], false);
  EXPECT_TRUE(absl::StartsWith(doc["keys"][0]["nodes"][0].get<std::string>(), "node"));
  EXPECT_GE(doc["keys"][0]["age_seconds"].get<int>(), 0);
  EXPECT_LT(doc["keys"][0]["version"].get<uint64_t>(),
            doc["keys"][2]["version"].get<uint64_t>() + 10);
  EXPECT_EQ(doc["more"], false);

  // Listing everything pages through the directory's 1000-key pages.
  RunResult none = Ctl({"ls", "no-such-prefix/"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.err, "0 keys, 0 B\n");
}

TEST_F(UnipoolctlTest, LsPagesThroughMoreKeysThanOnePage) {
  ClientOptions options;
  options.directory = cluster_->directory_address();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::string> keys;
  for (int i = 0; i < 2500; ++i) keys.push_back(absl::StrFormat("many/%05d", i));
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<uint8_t> value = {1, 2, 3};
  std::vector<std::span<const uint8_t>> values(keys.size(), value);
  for (const absl::Status& s : (*client)->BatchPut(views, values)) ASSERT_TRUE(s.ok()) << s;
  RunResult r = Ctl({"ls", "many/", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  ASSERT_EQ(doc["keys"].size(), 2500u);
  for (int i = 0; i < 2500; ++i) ASSERT_EQ(doc["keys"][i]["key"], keys[i]);

  RunResult rm = Ctl({"rm", "--prefix", "many/"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.err, "removed 2500 keys with prefix 'many/'\n");
  EXPECT_EQ(Ctl({"ls", "many/"}).err, "0 keys, 0 B\n");
}

TEST_F(UnipoolctlTest, LsShowsUnprintableKeysOnOneLine) {
  WriteFile(File("f"), "odd");
  ASSERT_EQ(Ctl({"put", "odd/line\nbreak\\tab", File("f")}).exit_code, 0);
  ASSERT_EQ(Ctl({"put", "odd/caf\xc3\xa9", File("f")}).exit_code, 0);
  RunResult r = Ctl({"ls", "odd/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[1], "odd/caf\xc3\xa9  ")) << lines[1];
  EXPECT_TRUE(absl::StartsWith(lines[2], "odd/line\\x0abreak\\\\tab  ")) << lines[2];
  // --json carries the exact key.
  json doc = json::parse(Ctl({"ls", "odd/", "--json"}).out);
  EXPECT_EQ(doc["keys"][1]["key"], "odd/line\nbreak\\tab");
  ASSERT_EQ(Ctl({"rm", "--prefix", "odd/"}).exit_code, 0);
}

TEST_F(UnipoolctlTest, StatShowsWhereAKeyLives) {
  WriteFile(File("f"), Bytes(12345, 9));
  ASSERT_EQ(Ctl({"put", "stat/k", File("f")}).exit_code, 0);
  RunResult r = Ctl({"stat", "stat/k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "key       stat/k\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "size      12.1 KiB (12345 bytes)\n")) << r.out;
  EXPECT_TRUE(
      std::regex_search(r.out, std::regex(R"(node      node\d \(id \d+, 127\.0\.0\.1:\d+, up\))")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(checksum  [0-9a-f]{16} \(XXH3-64\))")))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "pinned    no\n")) << r.out;

  json doc = json::parse(Ctl({"stat", "stat/k", "--json"}).out);
  EXPECT_EQ(doc["key"], "stat/k");
  EXPECT_EQ(doc["size"], 12345);
  EXPECT_EQ(doc["node_up"], true);
  EXPECT_EQ(doc["checksum"].get<std::string>().size(), 16u);
}

TEST_F(UnipoolctlTest, UnknownKeysAreOneLineErrors) {
  ExpectOneLineError(Ctl({"stat", "missing/key"}), "key 'missing/key' not found");
  ExpectOneLineError(Ctl({"get", "missing/key", File("out")}), "not found");
  EXPECT_FALSE(std::filesystem::exists(File("out")));
  ExpectOneLineError(Ctl({"rm", "missing/key"}), "not found");
}

TEST_F(UnipoolctlTest, ExistsAnswersWithItsExitCode) {
  WriteFile(File("f"), "e");
  ASSERT_EQ(Ctl({"put", "exists/yes", File("f")}).exit_code, 0);
  RunResult yes = Ctl({"exists", "exists/yes"});
  EXPECT_EQ(yes.exit_code, 0);
  EXPECT_EQ(yes.out, "yes\n");
  RunResult no = Ctl({"exists", "exists/no"});
  EXPECT_EQ(no.exit_code, 1);
  EXPECT_EQ(no.out, "no\n");
  EXPECT_EQ(no.err, "");
  EXPECT_EQ(json::parse(Ctl({"exists", "exists/yes", "--json"}).out)["exists"], true);
}

TEST_F(UnipoolctlTest, RmRemovesAKeyOrAPrefixAndNothingElse) {
  WriteFile(File("f"), "r");
  for (const char* key : {"rm/a", "rm/b", "rm/c", "rmkeep", "keep/rm/a"}) {
    ASSERT_EQ(Ctl({"put", key, File("f")}).exit_code, 0) << key;
  }
  RunResult one = Ctl({"rm", "rm/a"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(Ctl({"exists", "rm/a"}).exit_code, 1);
  RunResult prefix = Ctl({"rm", "--prefix", "rm/"});
  EXPECT_EQ(prefix.exit_code, 0) << prefix.err;
  EXPECT_EQ(prefix.err, "removed 2 keys with prefix 'rm/'\n");
  EXPECT_EQ(Ctl({"exists", "rm/b"}).exit_code, 1);
  EXPECT_EQ(Ctl({"exists", "rmkeep"}).exit_code, 0);
  EXPECT_EQ(Ctl({"exists", "keep/rm/a"}).exit_code, 0);
}

TEST_F(UnipoolctlTest, PutWithReplicasStoresCopiesOnDistinctNodes) {
  WriteFile(File("f"), Bytes(200000, 4));
  RunResult put = Ctl({"put", "replicas/two", File("f"), "--replicas", "2"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  json doc = json::parse(Ctl({"ls", "replicas/", "--json"}).out);
  ASSERT_EQ(doc["keys"].size(), 1u);
  std::vector<std::string> nodes = doc["keys"][0]["nodes"];
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_NE(nodes[0], nodes[1]);
  EXPECT_TRUE(std::regex_search(Ctl({"ls", "replicas/"}).out,
                                std::regex(R"(replicas/two +195\.3 KiB +node\d,node\d )")));
  ExpectOneLineError(Ctl({"put", "replicas/zero", File("f"), "--replicas", "0"}), "--replicas");
  ExpectOneLineError(Ctl({"put", "replicas/many", File("f"), "--replicas", "9"}), "");
}

TEST_F(UnipoolctlTest, PinAndUnpinShowInLs) {
  WriteFile(File("f"), "p");
  for (const char* key : {"pin/a", "pin/b", "pins/c"}) {
    ASSERT_EQ(Ctl({"put", key, File("f")}).exit_code, 0);
  }
  RunResult pin = Ctl({"pin", "pin/a"});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_EQ(pin.err, "pinned pin/a\n");
  RunResult prefix = Ctl({"pin", "--prefix", "pins/"});
  ASSERT_EQ(prefix.exit_code, 0) << prefix.err;
  EXPECT_EQ(prefix.err, "pinned every key starting with pins/\n");
  json doc = json::parse(Ctl({"ls", "pin", "--json"}).out);
  ASSERT_EQ(doc["keys"].size(), 3u);
  EXPECT_EQ(doc["keys"][0]["pinned"], true);   // pin/a
  EXPECT_EQ(doc["keys"][1]["pinned"], false);  // pin/b
  EXPECT_EQ(doc["keys"][2]["pinned"], true);   // pins/c, by its prefix
  EXPECT_TRUE(std::regex_search(Ctl({"ls", "pin/a"}).out, std::regex(R"(pin/a .* yes +\d+s)")));
  EXPECT_TRUE(absl::StrContains(Ctl({"stat", "pin/a"}).out, "pinned    yes\n"));
  EXPECT_GE(json::parse(Ctl({"status", "--json"}).out)["pool"]["pinned"].get<int>(), 2);

  RunResult unpin = Ctl({"unpin", "pin/a"});
  ASSERT_EQ(unpin.exit_code, 0) << unpin.err;
  EXPECT_EQ(json::parse(Ctl({"ls", "pin/a", "--json"}).out)["keys"][0]["pinned"], false);
  ExpectOneLineError(Ctl({"unpin", "pin/a"}), "pin/a");
  ASSERT_EQ(Ctl({"unpin", "--prefix", "pins/"}).exit_code, 0);
  ExpectOneLineError(Ctl({"pin"}), "usage: unipoolctl pin KEY | pin --prefix PREFIX");
  ExpectOneLineError(Ctl({"unpin", "k", "--prefix", "p"}), "usage:");
}

TEST_F(UnipoolctlTest, EvictByPrefixSparesPinnedObjects) {
  WriteFile(File("f"), Bytes(4096, 2));
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Ctl({"put", absl::StrFormat("evict/%d", i), File("f")}).exit_code, 0);
  }
  ASSERT_EQ(Ctl({"put", "evictnot", File("f")}).exit_code, 0);
  ASSERT_EQ(Ctl({"pin", "evict/0"}).exit_code, 0);
  RunResult r = Ctl({"evict", "--prefix", "evict/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "evicted 4 objects\n");
  json doc = json::parse(Ctl({"ls", "evict", "--json"}).out);
  ASSERT_EQ(doc["keys"].size(), 2u);
  EXPECT_EQ(doc["keys"][0]["key"], "evict/0");
  EXPECT_EQ(doc["keys"][1]["key"], "evictnot");
  EXPECT_GE(json::parse(Ctl({"status", "--json"}).out)["pool"]["evictions"].get<int>(), 4);
  RunResult again = Ctl({"evict", "--prefix", "evict/", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["evicted"], 0);
  ExpectOneLineError(Ctl({"evict"}), "usage: unipoolctl evict --prefix PREFIX | evict --all");
  ExpectOneLineError(Ctl({"evict", "--all", "--prefix", "x"}), "usage:");
  ASSERT_EQ(Ctl({"unpin", "evict/0"}).exit_code, 0);
}

TEST_F(UnipoolctlTest, DrainEmptiesANodeAndUndrainTakesItBack) {
  WriteFile(File("f"), Bytes(300000, 6));
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(Ctl({"put", absl::StrFormat("drain/%d", i), File("f")}).exit_code, 0);
  }
  // Whatever happens, the shared cluster gets node2 back.
  absl::Cleanup undrain = [this] { Ctl({"undrain", "node2"}); };
  RunResult r = Ctl({"drain", "node2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "drained node2: ")) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos);  // no bar on a pipe
  json nodes = json::parse(Ctl({"nodes", "--json"}).out)["nodes"];
  EXPECT_EQ(nodes[2]["name"], "node2");
  EXPECT_EQ(nodes[2]["state"], "draining");
  EXPECT_EQ(nodes[2]["objects"], 0);
  EXPECT_TRUE(std::regex_search(Ctl({"status"}).out, std::regex(R"(\nnode2 .* draining )")));
  json keys = json::parse(Ctl({"ls", "drain/", "--json"}).out)["keys"];
  ASSERT_EQ(keys.size(), 6u);
  for (const json& k : keys) EXPECT_NE(k["nodes"][0], "node2") << k.dump();
  // Everything still reads back.
  WriteFile(File("expected"), Bytes(300000, 6));
  for (int i = 0; i < 6; ++i) {
    RunResult get = Ctl({"get", absl::StrFormat("drain/%d", i), File("got")});
    ASSERT_EQ(get.exit_code, 0) << get.err;
    EXPECT_EQ(ReadFile(File("got")), ReadFile(File("expected")));
  }

  RunResult back = Ctl({"undrain", "node2"});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(json::parse(Ctl({"nodes", "--json"}).out)["nodes"][2]["state"], "up");
  ExpectOneLineError(Ctl({"drain", "no-such-node"}), "no-such-node");
  ExpectOneLineError(Ctl({"drain"}), "usage: unipoolctl drain NODE");
}

TEST_F(UnipoolctlTest, UnreachableDirectoryIsOneLineError) {
  RunResult r = Exec({CtlPath(), "--directory", "127.0.0.1:1", "status"});
  ExpectOneLineError(r, "127.0.0.1:1");
  RunResult env = Exec({CtlPath(), "ls"}, {"UNIPOOL_DIRECTORY=127.0.0.1:1"});
  ExpectOneLineError(env, "127.0.0.1:1");
}

TEST_F(UnipoolctlTest, DirectoryComesFromTheEnvironment) {
  RunResult r =
      Exec({CtlPath(), "nodes", "--json"}, {"UNIPOOL_DIRECTORY=" + cluster_->directory_address()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["nodes"].size(), static_cast<size_t>(kNodes));
}

TEST_F(UnipoolctlTest, BadCommandLinesAreOneLineUsageErrors) {
  RunResult unknown = Ctl({"frobnicate"});
  ExpectOneLineError(unknown, "unknown command 'frobnicate'");
  EXPECT_EQ(unknown.exit_code, 2);
  RunResult none = Exec({CtlPath()});
  ExpectOneLineError(none, "no command");
  EXPECT_EQ(none.exit_code, 2);
  RunResult put = Ctl({"put", "only-a-key"});
  ExpectOneLineError(put, "usage: unipoolctl put KEY FILE");
  EXPECT_EQ(put.exit_code, 2);
  ExpectOneLineError(Ctl({"rm"}), "usage: unipoolctl rm KEY | rm --prefix PREFIX");
  ExpectOneLineError(Ctl({"rm", "a", "--prefix", "b"}), "usage:");
  RunResult limit = Ctl({"ls", "--limit", "-5"});
  ExpectOneLineError(limit, "--limit");
  EXPECT_EQ(limit.exit_code, 2);
  WriteFile(File("value"), "v");
  for (const char* replicas : {"-1", "0", "17"}) {
    RunResult put = Ctl({"put", "k", File("value"), "--replicas", replicas});
    ExpectOneLineError(put, "--replicas must be 1 to 16");
    EXPECT_EQ(put.exit_code, 2) << replicas;
  }
  ExpectOneLineError(Ctl({"put", "k", File("does-not-exist")}), "does-not-exist");
  WriteFile(File("empty"), "");
  ExpectOneLineError(Ctl({"put", "k", File("empty")}), "empty");
  RunResult help = Exec({CtlPath(), "help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "cluster up")) << help.out;
}

TEST_F(UnipoolctlTest, BadSizeStringIsOneLineError) {
  RunResult r = Exec({CtlPath(), "cluster", "up", "--pool-size", "12XB", "--work-dir", File("c")});
  ExpectOneLineError(r, "--pool-size 12XB");
  RunResult nodes = Exec({CtlPath(), "cluster", "up", "--nodes", "0", "--work-dir", File("c")});
  ExpectOneLineError(nodes, "--nodes 0");
}

// unipool-node checks every flag before it creates anything: a bad one is
// one line naming it, exit 2, and no state folder or slab left behind.
TEST_F(UnipoolctlTest, NodeFlagsAreCheckedBeforeAnythingIsCreated) {
  const std::string node = ExecutableDir() + "/unipool-node";
  const std::string state = File("node-state");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--advertise", "garbage"}, "--advertise: 'garbage'"},
      {{"--advertise", "10.0.0.1:7301,nope"}, "'nope' is not HOST:PORT"},
      {{"--directory", "garbage"}, "--directory: 'garbage'"},
      {{"--listen", "no-port"}, "--listen: 'no-port'"},
      {{"--prefault-threads=-1"}, "--prefault-threads"},
      {{"--pool-size", "1"}, "under the 1 MiB minimum"},
  };
  // The directory's node timeout cannot be shorter than two beats.
  RunResult directory =
      Exec({ExecutableDir() + "/unipool-directory", "--db", File("db"), "--node-timeout=1ns"});
  EXPECT_EQ(directory.exit_code, 2) << directory.err;
  EXPECT_TRUE(absl::StrContains(directory.err, "--node-timeout must be")) << directory.err;
  EXPECT_EQ(Lines(directory.err).size(), 1u) << directory.err;
  EXPECT_FALSE(std::filesystem::exists(File("db")));
  for (const auto& [flags, needle] : cases) {
    std::vector<std::string> argv = {node, "--state-dir", state, "--pool-size", "8MiB"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    RunResult r = Exec(argv);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(flags, " ") << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "unipool-node: ")) << r.err;
    EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
    EXPECT_FALSE(std::filesystem::exists(state)) << absl::StrJoin(flags, " ");
  }
}

TEST_F(UnipoolctlTest, NoProgressBarWhenNotATerminal) {
  std::string data = Bytes(48 << 20, 5);
  WriteFile(File("big"), data);
  RunResult put = Ctl({"put", "progress/pipe", File("big")});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(put.err.find('\r'), std::string::npos) << put.err;
  EXPECT_EQ(put.err.find('\033'), std::string::npos) << put.err;
  EXPECT_EQ(Lines(put.err).size(), 1u) << put.err;
}

TEST_F(UnipoolctlTest, ProgressBarOnATerminal) {
  // stdin trickles in for over a second: long work, drawn as it happens.
  std::vector<std::string> chunks(6, Bytes(1 << 20, 3));
  RunResult r = RunOnTerminal(
      {CtlPath(), "--directory", cluster_->directory_address(), "put", "progress/tty", "-"}, chunks,
      absl::Milliseconds(250));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\r\033[Kread - [")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "MiB")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "stored progress/tty: 6.0 MiB")) << r.out;
}

TEST_F(UnipoolctlTest, ClusterUpServesUntilInterrupted) {
  std::string dir = File("cluster");
  Background up({CtlPath(), "cluster", "up", "--nodes", "2", "--pool-size", "32MiB", "--listen",
                 "127.0.0.1:0", "--http", "127.0.0.1:0", "--work-dir", dir},
                File("cluster-up.err"));
  std::string out = up.ReadUntil("Ctrl-C stops the cluster.", absl::Seconds(30));
  ASSERT_FALSE(out.empty()) << ReadFile(File("cluster-up.err"));
  EXPECT_TRUE(absl::StrContains(out, "unipool cluster up: 2 nodes of 32.0 MiB, 64.0 MiB in all"))
      << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(directory  (127\.0\.0\.1:\d+))"))) << out;
  std::string directory = m[1];
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(dashboard  http://(127\.0\.0\.1:\d+)/)")))
      << out;

  RunResult status = Exec({CtlPath(), "--directory", directory, "status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json doc = json::parse(status.out);
  EXPECT_EQ(doc["pool"]["nodes_up"], 2);
  EXPECT_EQ(doc["pool"]["capacity"], 64 << 20);
  // A pool of its own: evict --all empties it.
  WriteFile(File("f"), "all");
  ASSERT_EQ(Exec({CtlPath(), "--directory", directory, "put", "a", File("f")}).exit_code, 0);
  ASSERT_EQ(Exec({CtlPath(), "--directory", directory, "put", "b", File("f")}).exit_code, 0);
  RunResult all = Exec({CtlPath(), "--directory", directory, "evict", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "evicted 2 objects\n");
  EXPECT_EQ(Exec({CtlPath(), "--directory", directory, "ls"}).err, "0 keys, 0 B\n");

  // Ctrl-C: everything stops, cleanly and quickly.
  EXPECT_EQ(up.Stop(SIGINT, absl::Seconds(15)), 0);
  std::string log = ReadFile(File("cluster-up.err"));
  EXPECT_TRUE(absl::StrContains(log, "signal 2: stopping")) << log;
  EXPECT_TRUE(absl::StrContains(log, "stopped")) << log;
  ExpectOneLineError(Exec({CtlPath(), "--directory", directory, "status"}), directory);
  EXPECT_TRUE(absl::StrContains(ReadFile(dir + "/directory.log"), "signal 15: stopping"));
  EXPECT_TRUE(absl::StrContains(ReadFile(dir + "/directory.log"), "dashboard on http://"));
}

}  // namespace
}  // namespace unipool
