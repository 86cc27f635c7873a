// Catalog (unipool/directory/catalog.h): batches of writes and deletes survive
// closing and reopening the RocksDB database, and Load returns exactly what is left.
#include "unipool/directory/catalog.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "unipool/directory/records.h"
#include "unipool/testing/temp_dir.h"

namespace unipool {
namespace {

// A fresh directory per test (and per process: ctest runs tests in parallel).
class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("catalog");
    path_ = (dir_ / "db").string();
  }
  void TearDown() override { testing::RemoveUnlessFailed(dir_.string()); }

  std::unique_ptr<Catalog> OpenCatalog() {
    auto catalog = Catalog::Open(path_, {});
    EXPECT_TRUE(catalog.ok()) << catalog.status();
    return catalog.ok() ? std::move(*catalog) : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
};

ObjectRecord Object(uint64_t version) {
  ObjectRecord r;
  r.copies = {{static_cast<NodeId>(version % 3 + 1), version * 4096}};
  r.length = version * 100 + 1;
  r.version = version;
  r.checksum = version * 0x9e3779b97f4a7c15ull;
  r.created_unix_ms = 1'700'000'000'000 + static_cast<int64_t>(version);
  return r;
}

PendingPut Pending(uint64_t put_id, std::string key) {
  PendingPut p;
  p.put_id = put_id;
  p.key = std::move(key);
  p.copies = {{2, put_id * 8192}};
  p.length = 5000;
  p.replace = put_id % 2 == 0;
  p.deadline_unix_ms = 1'700'000'030'000;
  return p;
}

NodeRecord Node(NodeId id, std::string name, uint64_t slab_id) {
  NodeRecord n;
  n.node_id = id;
  n.name = std::move(name);
  n.host = "host-" + n.name;
  n.data_address = "127.0.0.1:" + std::to_string(7000 + id);
  n.slab_id = slab_id;
  n.slab_size = 1ull << 30;
  n.transports = {"tcp"};
  return n;
}

// Records are compared through their encodings (whose round trip
// records_test covers), so every field counts.
std::map<std::string, std::string> ObjectsOf(const CatalogContents& c) {
  std::map<std::string, std::string> out;
  for (const auto& [key, record] : c.objects) {
    EXPECT_TRUE(out.emplace(key, EncodeObject(record)).second) << "duplicate key " << key;
  }
  return out;
}
std::map<uint64_t, std::string> PendingOf(const CatalogContents& c) {
  std::map<uint64_t, std::string> out;
  for (const PendingPut& p : c.pending) {
    EXPECT_TRUE(out.emplace(p.put_id, EncodePendingPut(p)).second) << "duplicate put " << p.put_id;
  }
  return out;
}
std::map<NodeId, std::string> NodesOf(const CatalogContents& c) {
  std::map<NodeId, std::string> out;
  for (const NodeRecord& n : c.nodes) {
    EXPECT_TRUE(out.emplace(n.node_id, EncodeNode(n)).second) << "duplicate node " << n.node_id;
  }
  return out;
}

TEST_F(CatalogTest, FreshCatalogIsEmpty) {
  auto catalog = OpenCatalog();
  ASSERT_NE(catalog, nullptr);
  auto contents = catalog->Load();
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_TRUE(contents->objects.empty());
  EXPECT_TRUE(contents->pending.empty());
  EXPECT_TRUE(contents->nodes.empty());
  EXPECT_EQ(contents->next_version, 1u);
}

TEST_F(CatalogTest, ReopenLoadsExactlyWhatIsLeft) {
  // Object keys are arbitrary bytes; include ones that look like the
  // catalog's own prefixes and meta key.
  const std::vector<std::string> keys = {
      "a", "page/0001",      std::string("bin\0\xff\x01", 6), "n",
      "p", "m:next_version", std::string(1024, 'z')};
  std::map<std::string, std::string> objects;
  std::map<uint64_t, std::string> pending;
  std::map<NodeId, std::string> nodes;
  {
    auto catalog = OpenCatalog();
    ASSERT_NE(catalog, nullptr);
    CatalogBatch batch;
    EXPECT_TRUE(batch.empty());
    for (size_t i = 0; i < keys.size(); ++i) {
      ObjectRecord r = Object(i + 1);
      batch.PutObject(keys[i], r);
      objects[keys[i]] = EncodeObject(r);
    }
    // Ids that differ only in high bytes: the keys are big-endian integers.
    for (uint64_t id : {uint64_t{20}, uint64_t{256}, uint64_t{65536}, uint64_t{1} << 40}) {
      PendingPut p = Pending(id, "pending-" + std::to_string(id));
      batch.PutPending(p);
      pending[id] = EncodePendingPut(p);
    }
    for (NodeId id : {1u, 2u, 300u}) {
      NodeRecord n = Node(id, "node" + std::to_string(id), 1000 + id);
      batch.PutNode(n);
      nodes[id] = EncodeNode(n);
    }
    batch.PutNextVersion(50);
    EXPECT_FALSE(batch.empty());
    ASSERT_TRUE(catalog->Write(batch).ok());

    // Second batch: deletes, overwrites, and a new version counter. Not
    // fsync'ed: it must still survive closing the database.
    CatalogBatch second;
    second.DeleteObject("page/0001");
    objects.erase("page/0001");
    second.DeleteObject("n");
    objects.erase("n");
    second.DeleteObject("never-written");  // deleting a missing key is harmless
    ObjectRecord replaced = Object(99);
    second.PutObject("a", replaced);
    objects["a"] = EncodeObject(replaced);
    second.DeletePending(256);
    pending.erase(256);
    second.DeletePending(12345);  // unknown id
    NodeRecord moved = Node(2, "node2", 777);
    moved.data_address = "10.0.0.2:7302";
    moved.transports = {"tcp", "verbs-rc"};
    second.PutNode(moved);
    nodes[2] = EncodeNode(moved);
    second.PutNextVersion(123);
    ASSERT_TRUE(catalog->Write(second).ok());

    // An empty batch is a no-op.
    CatalogBatch nothing;
    EXPECT_TRUE(catalog->Write(nothing).ok());

    // The open catalog already shows the result.
    auto contents = catalog->Load();
    ASSERT_TRUE(contents.ok()) << contents.status();
    EXPECT_EQ(ObjectsOf(*contents), objects);
  }  // closed

  auto catalog = OpenCatalog();
  ASSERT_NE(catalog, nullptr);
  auto contents = catalog->Load();
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(ObjectsOf(*contents), objects);
  EXPECT_EQ(PendingOf(*contents), pending);
  EXPECT_EQ(NodesOf(*contents), nodes);
  EXPECT_EQ(contents->next_version, 123u);
  EXPECT_EQ(contents->objects.size(), objects.size());
  EXPECT_EQ(contents->pending.size(), pending.size());
  EXPECT_EQ(contents->nodes.size(), nodes.size());
}

TEST_F(CatalogTest, ManyBatchesThenReopen) {
  std::map<std::string, std::string> objects;
  {
    auto catalog = OpenCatalog();
    ASSERT_NE(catalog, nullptr);
    for (uint64_t round = 0; round < 50; ++round) {
      CatalogBatch batch;
      for (uint64_t i = 0; i < 20; ++i) {
        uint64_t v = round * 20 + i + 1;
        std::string key = "k" + std::to_string(v);
        batch.PutObject(key, Object(v));
        objects[key] = EncodeObject(Object(v));
      }
      // Delete every third object of the previous round.
      if (round > 0) {
        for (uint64_t i = 0; i < 20; i += 3) {
          std::string key = "k" + std::to_string((round - 1) * 20 + i + 1);
          batch.DeleteObject(key);
          objects.erase(key);
        }
      }
      batch.PutNextVersion(round * 20 + 21);
      ASSERT_TRUE(catalog->Write(batch).ok());
    }
  }
  auto catalog = OpenCatalog();
  ASSERT_NE(catalog, nullptr);
  auto contents = catalog->Load();
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(ObjectsOf(*contents), objects);
  EXPECT_EQ(contents->next_version, 49u * 20 + 21);
}

TEST_F(CatalogTest, SecondOpenOfTheSamePathIsRefused) {
  auto first = OpenCatalog();
  ASSERT_NE(first, nullptr);
  auto second = Catalog::Open(path_, {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

TEST_F(CatalogTest, OpenOfARegularFileFails) {
  std::string file = (dir_ / "not-a-db").string();
  std::ofstream(file) << "hello";
  auto catalog = Catalog::Open(file, {});
  EXPECT_FALSE(catalog.ok());
}

// kAlways: AwaitDurable fsyncs the log (once for what was written before it);
// kInterval: it returns at once and the background thread fsyncs.
TEST_F(CatalogTest, AwaitDurableFsyncsWithAlwaysAndLeavesItToTheFlusherWithEverysec) {
  {
    auto always = Catalog::Open(path_, {.sync = SyncMode::kAlways});
    ASSERT_TRUE(always.ok()) << always.status();
    CatalogBatch batch;
    batch.PutObject("a", Object(1));
    auto ticket = (*always)->Write(batch);
    ASSERT_TRUE(ticket.ok()) << ticket.status();
    EXPECT_EQ((*always)->syncs(), 0u);
    ASSERT_TRUE((*always)->AwaitDurable(*ticket).ok());
    EXPECT_EQ((*always)->syncs(), 1u);
    ASSERT_TRUE((*always)->AwaitDurable(*ticket).ok());
    EXPECT_EQ((*always)->syncs(), 1u);
  }
  auto everysec =
      Catalog::Open(path_, {.sync = SyncMode::kInterval, .sync_interval = absl::Milliseconds(10)});
  ASSERT_TRUE(everysec.ok()) << everysec.status();
  CatalogBatch batch;
  batch.PutObject("b", Object(2));
  auto ticket = (*everysec)->Write(batch);
  ASSERT_TRUE(ticket.ok()) << ticket.status();
  ASSERT_TRUE((*everysec)->AwaitDurable(*ticket).ok());
  // The flusher fsyncs within its interval (bound generously for a busy machine).
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((*everysec)->syncs() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_GE((*everysec)->syncs(), 1u);
  auto contents = (*everysec)->Load();
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(contents->objects.size(), 2u);
}

TEST_F(CatalogTest, EverysecNeedsAPositiveInterval) {
  auto catalog =
      Catalog::Open(path_, {.sync = SyncMode::kInterval, .sync_interval = absl::ZeroDuration()});
  EXPECT_EQ(catalog.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace unipool
