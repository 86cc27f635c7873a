#include "unipool/testing/keyed_cluster.h"

#include <filesystem>

namespace unipool::testing {

void KeyedClusterTest::StartKeyedCluster(std::string_view prefix, LocalClusterOptions options) {
  auto cluster = StartTestCluster(prefix, std::move(options), TestAuth::kClusterKey);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  cluster_ = std::move(*cluster);
  auto key = LoadCredentialFile(cluster_->key_file());
  ASSERT_TRUE(key.ok()) << key.status();
  key_ = *key;
}

LocalClusterOptions KeyedClusterTest::OneTcpNode(uint64_t pool_bytes) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = pool_bytes;
  options.node_flags = {"--shm=off"};
  return options;
}

std::shared_ptr<const Credential> KeyedClusterTest::Token(wire::Role role,
                                                          const std::string& prefix) {
  auto token = NewToken(key_, role, prefix);
  EXPECT_TRUE(token.ok()) << token.status();
  return std::make_shared<Credential>(token.ok() ? *token : Credential{});
}

std::string KeyedClusterTest::TokenFile(const std::string& name, wire::Role role,
                                        const std::string& prefix) {
  std::string path = cluster_->work_dir() + "/" + name;
  std::filesystem::remove(path);
  EXPECT_TRUE(WriteCredentialFile(path, *Token(role, prefix)).ok());
  return path;
}

std::unique_ptr<Client> KeyedClusterTest::Connect(const std::string& key_file,
                                                  ClientOptions options) {
  options.key_file = key_file;
  auto client = ConnectTo(*cluster_, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

std::unique_ptr<Admin> KeyedClusterTest::ClusterAdmin() {
  ClientOptions options;
  options.directory = cluster_->directory_address();
  options.key_file = cluster_->key_file();
  auto admin = Admin::Connect(options);
  EXPECT_TRUE(admin.ok()) << admin.status();
  return admin.ok() ? std::move(*admin) : nullptr;
}

std::unique_ptr<Connection> KeyedClusterTest::Open(const std::string& address,
                                                   std::shared_ptr<const Credential> credential) {
  ConnectionOptions options;
  options.credential = std::move(credential);
  auto conn = Connection::Open(address, options);
  EXPECT_TRUE(conn.ok()) << conn.status();
  return conn.ok() ? std::move(*conn) : nullptr;
}

void ExpectRefused(const absl::Status& s, std::string_view why) {
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(std::string(s.message()).find(std::string(why)), std::string::npos) << s;
}

}  // namespace unipool::testing
