// Bad flags and files stop the servers and unipoolctl at once, with one line
// and exit 2, before anything is created on disk: a directory --listen that
// is no address or not this machine's, a node --directory that is no
// address, a world-readable TLS key, an empty `tls init --hosts`, a request
// memory cap below the largest request, and the connection caps below 1.
#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/common/tls_files.h"
#include "unipool/testing/subprocess.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

class FlagChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-flags-%d", getpid()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Runs `program` with `flags`; expects exit 2 and one line naming `expected`.
  void ExpectBadUsage(const std::string& program, const std::vector<std::string>& flags,
                      const std::string& expected) {
    std::vector<std::string> argv = {ExecutableDir() + "/" + program};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto run = testing::Run(argv, {}, "", absl::Seconds(30));
    EXPECT_EQ(run.exit_code, 2) << program << ": " << run.err;
    EXPECT_NE(run.err.find(expected), std::string::npos) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }

  std::string dir_;
};

TEST_F(FlagChecksTest, ADirectoryWithABadListenCreatesNoCatalog) {
  std::string db = dir_ + "/db";
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--listen=garbage"}, "--listen");
  // An address of another machine: no listening there, nothing created here.
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--listen=192.0.2.1:7300"},
                 "--listen: cannot listen on 192.0.2.1:7300");
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST_F(FlagChecksTest, ANodeWithAGarbageDirectoryStopsAtOnce) {
  ExpectBadUsage("unipool-node",
                 {"--directory=garbage", "--pool-size=4MiB", "--state-dir=" + dir_ + "/state"},
                 "--directory: 'garbage' is not HOST:PORT");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state"));
}

TEST_F(FlagChecksTest, CapsAndTheRequestMemoryAreChecked) {
  std::string db = dir_ + "/db";
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--max-request-memory=1MiB"},
                 "--max-request-memory must be at least");
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--max-request-memory=lots"},
                 "--max-request-memory");
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--max-connections-per-identity=0"},
                 "--max-connections-per-identity must be at least 1");
  ExpectBadUsage("unipool-node", {"--max-unauthenticated-connections=-1"},
                 "--max-unauthenticated-connections must be at least 1");
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST_F(FlagChecksTest, ReplicationFlagsAreChecked) {
  std::string db = dir_ + "/db";
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--peers=127.0.0.1:7301"}, "need --etcd");
  ExpectBadUsage("unipool-directory", {"--db=" + db, "--etcd=http://127.0.0.1:2379"},
                 "--etcd needs --replication-listen");
  ExpectBadUsage("unipool-directory",
                 {"--db=" + db, "--etcd=http://127.0.0.1:2379", "--replication-listen=garbage"},
                 "--replication-listen");
  ExpectBadUsage("unipool-directory",
                 {"--db=" + db, "--etcd=http://127.0.0.1:2379",
                  "--replication-listen=127.0.0.1:7301", "--election-ttl=1500ms"},
                 "--election-ttl must be whole seconds");
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST_F(FlagChecksTest, AWorldReadableTlsKeyIsRefused) {
  std::string tls = dir_ + "/tls";
  ASSERT_TRUE(WriteTlsFiles(tls, {"127.0.0.1"}).ok());
  std::string key = tls + "/" + kTlsServerKey;
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  ExpectBadUsage(
      "unipool-directory",
      {"--db=" + dir_ + "/db", "--listen=127.0.0.1:0", "--tls-cert=" + tls + "/" + kTlsServerCert,
       "--tls-key=" + key, "--tls-ca=" + tls + "/" + kTlsCaCert},
      "may be read by every user (mode 0644): run chmod 600");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/db"));
}

TEST_F(FlagChecksTest, TlsInitWithEmptyHostsIsBadUsage) {
  ExpectBadUsage("unipoolctl", {"tls", "init", dir_ + "/made", "--hosts="}, "--hosts is empty");
  ExpectBadUsage("unipoolctl", {"tls", "init", dir_ + "/made", "--hosts", ""}, "--hosts is empty");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/made"));
}

}  // namespace
}  // namespace unipool
