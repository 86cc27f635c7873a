// The one fixture for tests of a Directory in process: a real RocksDB
// catalog in a private temp folder, a fake clock the test advances (nothing
// sleeps), and short helpers for registering nodes and putting, finding and
// removing objects. Suites change the options in Configure.
#ifndef UNIPOOL_TESTING_DIRECTORY_FIXTURE_H_
#define UNIPOOL_TESTING_DIRECTORY_FIXTURE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/directory/directory.h"

namespace unipool::testing {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;

// A node as the tests name it; its host and address follow from the name.
struct TestNode {
  std::string name;
  uint64_t slab_id = 1;
  uint64_t slab_size = 64 * kMiB;
};
// Three nodes of two sizes.
inline const TestNode kNodeA{"node-a", 0xa1, 64 * kMiB};
inline const TestNode kNodeB{"node-b", 0xb1, 64 * kMiB};
inline const TestNode kNodeC{"node-c", 0xc1, 32 * kMiB};

class DirectoryFixture : public ::testing::Test {
 protected:
  // The fixture's put and node timeouts (suites may change them in
  // Configure).
  static constexpr absl::Duration kPutTimeout = absl::Seconds(30);
  static constexpr absl::Duration kNodeTimeout = absl::Seconds(5);

  void SetUp() override;
  void TearDown() override;

  // Before every open. The defaults: puts expire after kPutTimeout, nodes
  // time out after kNodeTimeout, no read leases, no wait for nodes after a
  // reopen, and the fixture's clock.
  virtual void Configure(DirectoryOptions& options) {}

  // Destroys the directory (closing its catalog) and opens it again on the
  // same path, with the same clock; `sync`: fsync every commit (kAlways).
  absl::Status Reopen(bool sync = false);
  void Advance(absl::Duration d) { now_ += d; }

  static std::string AddressOf(std::string_view name);
  static NodeRegistration RegistrationOf(const TestNode& node);
  // A registration of `name` (16 MiB at one address) with this identity and
  // pool.
  static NodeRegistration Claim(std::string_view name, std::string_view identity,
                                std::string_view pool_id = "", uint64_t slab_id = 1);
  absl::StatusOr<RegistrationResult> Register(const TestNode& node);
  NodeId MustRegister(const TestNode& node);

  absl::StatusOr<Reservation> Start(std::string_view key, uint64_t length, bool replace = false,
                                    int replicas = 1);
  absl::Status Commit(uint64_t put_id, uint64_t checksum);
  // PutStart + PutCommit, expected to succeed; returns the version.
  uint64_t Put(std::string_view key, uint64_t length, uint64_t checksum, bool replace = false);
  absl::StatusOr<ObjectInfo> Find(std::string_view key);
  bool Exists(std::string_view key);
  absl::Status Remove(std::string_view key);
  void Abort(uint64_t put_id);

  uint64_t Used();
  std::optional<NodeState> NodeStatusOf(NodeId id);
  uint64_t UsedOn(NodeId id);
  bool UpOf(NodeId id);

  std::filesystem::path dir_;
  std::string db_path_;
  absl::Time now_ = absl::FromUnixSeconds(1'764'064'800);  // 2025-11-25
  std::unique_ptr<Directory> directory_;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_DIRECTORY_FIXTURE_H_
