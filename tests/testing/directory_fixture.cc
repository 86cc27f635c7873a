#include "unipool/testing/directory_fixture.h"

#include "unipool/testing/temp_dir.h"

namespace unipool::testing {

void DirectoryFixture::SetUp() {
  dir_ = FreshTestDir("directory");
  db_path_ = (dir_ / "catalog").string();
  absl::Status opened = Reopen();
  ASSERT_TRUE(opened.ok()) << opened;
}

void DirectoryFixture::TearDown() {
  directory_.reset();
  RemoveUnlessFailed(dir_.string());
}

absl::Status DirectoryFixture::Reopen(bool sync) {
  directory_.reset();
  DirectoryOptions options;
  options.sync = sync ? SyncMode::kAlways : SyncMode::kInterval;
  options.put_timeout = kPutTimeout;
  options.node_timeout = kNodeTimeout;
  options.clock = [this] { return now_; };
  options.restart_grace = absl::ZeroDuration();
  options.lease = absl::ZeroDuration();
  Configure(options);
  auto directory = Directory::Open(db_path_, std::move(options));
  if (!directory.ok()) return directory.status();
  directory_ = std::move(*directory);
  return absl::OkStatus();
}

std::string DirectoryFixture::AddressOf(std::string_view name) {
  return "127.0.0.1:" + std::to_string(7000 + name.size()) + "/" + std::string(name);
}

NodeRegistration DirectoryFixture::RegistrationOf(const TestNode& node) {
  NodeRegistration reg;
  reg.name = node.name;
  reg.host = "host-" + node.name;
  reg.data_address = AddressOf(node.name);
  reg.slab_id = node.slab_id;
  reg.slab_size = node.slab_size;
  reg.transports = {"tcp"};
  return reg;
}

NodeRegistration DirectoryFixture::Claim(std::string_view name, std::string_view identity,
                                         std::string_view pool_id, uint64_t slab_id) {
  NodeRegistration reg;
  reg.name = std::string(name);
  reg.host = "host";
  reg.data_address = "127.0.0.1:7001";
  reg.slab_id = slab_id;
  reg.slab_size = 16 * kMiB;
  reg.identity = std::string(identity);
  reg.pool_id = std::string(pool_id);
  return reg;
}

absl::StatusOr<RegistrationResult> DirectoryFixture::Register(const TestNode& node) {
  return directory_->RegisterNode(RegistrationOf(node));
}

NodeId DirectoryFixture::MustRegister(const TestNode& node) {
  auto result = Register(node);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->node_id : 0;
}

absl::StatusOr<Reservation> DirectoryFixture::Start(std::string_view key, uint64_t length,
                                                    bool replace, int replicas) {
  PutRequest request{key, length, replace, replicas};
  auto results = directory_->PutStart({&request, 1});
  EXPECT_EQ(results.size(), 1u);
  return results.at(0);
}

absl::Status DirectoryFixture::Commit(uint64_t put_id, uint64_t checksum) {
  CommitRequest request{put_id, checksum};
  auto results = directory_->PutCommit({&request, 1});
  EXPECT_EQ(results.size(), 1u);
  return results.at(0);
}

uint64_t DirectoryFixture::Put(std::string_view key, uint64_t length, uint64_t checksum,
                               bool replace) {
  auto reservation = Start(key, length, replace);
  EXPECT_TRUE(reservation.ok()) << key << ": " << reservation.status();
  if (!reservation.ok()) return 0;
  absl::Status committed = Commit(reservation->put_id, checksum);
  EXPECT_TRUE(committed.ok()) << key << ": " << committed;
  return reservation->location.version;
}

absl::StatusOr<ObjectInfo> DirectoryFixture::Find(std::string_view key) {
  auto results = directory_->Lookup({&key, 1});
  EXPECT_EQ(results.size(), 1u);
  return results.at(0);
}

bool DirectoryFixture::Exists(std::string_view key) { return directory_->Exists({&key, 1}).at(0); }

absl::Status DirectoryFixture::Remove(std::string_view key) {
  return directory_->Remove({&key, 1}).at(0);
}

void DirectoryFixture::Abort(uint64_t put_id) { directory_->PutAbort({&put_id, 1}); }

uint64_t DirectoryFixture::Used() { return directory_->Status().used; }

std::optional<NodeState> DirectoryFixture::NodeStatusOf(NodeId id) {
  for (NodeState& node : directory_->Status().nodes) {
    if (node.node_id == id) return node;
  }
  return std::nullopt;
}

uint64_t DirectoryFixture::UsedOn(NodeId id) {
  auto node = NodeStatusOf(id);
  EXPECT_TRUE(node.has_value()) << "node " << id;
  return node ? node->used : 0;
}

bool DirectoryFixture::UpOf(NodeId id) {
  auto node = NodeStatusOf(id);
  EXPECT_TRUE(node.has_value()) << "node " << id;
  return node && node->up;
}

}  // namespace unipool::testing
