// Zero-copy views (Client::GetView, GetPrefixViews; unipool/view.h) with a
// real directory and nodes on this machine: the bytes, their protection,
// their life across a remove, the views' bound, and a node that dies.
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/test_pages.h"

namespace unipool {
namespace {

using ::unipool::testing::ConnectTo;
using ::unipool::testing::PageBytes;
using ::unipool::testing::StartTestCluster;
using ::unipool::testing::TestCluster;

// A short lease: views renew every third of it, so a removed key's view
// detaches within a second.
TestCluster StartCluster() {
  LocalClusterOptions options;
  options.nodes = 1;
  options.pool_size = 32ull << 20;
  options.node_flags = {"--rdma=off"};
  options.directory_flags = {"--lease=3s"};
  auto cluster = StartTestCluster("view", options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? std::move(*cluster) : nullptr;
}

std::unique_ptr<Client> Connect(const LocalCluster& cluster, uint64_t max_view_bytes = 1 << 30) {
  ClientOptions options;
  options.name = "view-test";
  options.rdma = RdmaPolicy::kOff;
  options.max_view_bytes = max_view_bytes;
  auto client = ConnectTo(cluster, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

// The permissions of the mapping holding `address`, from /proc/self/maps
// ("r--s"), or empty.
std::string Permissions(const void* address) {
  auto at = reinterpret_cast<uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::string perms;
    std::istringstream in(line);
    in >> std::hex >> begin >> dash >> end >> perms;
    if (at >= begin && at < end) return perms;
  }
  return "";
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
  absl::Time end = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

TEST(ViewTest, RightBytesReadOnlyAndCounted) {
  auto cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster);
  ASSERT_NE(client, nullptr);
  auto page = PageBytes("view/a", 256 << 10);
  ASSERT_TRUE(client->Put("view/a", page).ok());
  {
    auto view = client->GetView("view/a");
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_EQ(view->size(), page.size());
    EXPECT_TRUE(std::equal(page.begin(), page.end(), view->data()));
    EXPECT_EQ(view->key(), "view/a");
    EXPECT_FALSE(view->stale());
    if (std::ifstream("/proc/self/maps").good()) {
      std::string perms = Permissions(view->data());
      ASSERT_EQ(perms.size(), 4u);
      EXPECT_EQ(perms.substr(0, 2), "r-") << "a view must not be writable: " << perms;
    }
    EXPECT_EQ(client->view_bytes(), page.size());
  }
  EXPECT_EQ(client->view_bytes(), 0u) << "a dropped view gives its bytes back";
  EXPECT_TRUE(absl::IsNotFound(client->GetView("view/none").status()));
}

TEST(ViewTest, BoundedByMaxViewBytes) {
  auto cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster, /*max_view_bytes=*/3 << 20);
  ASSERT_NE(client, nullptr);
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(absl::StrFormat("view/bound/%d", i));
    ASSERT_TRUE(client->Put(keys.back(), PageBytes(keys.back(), 1 << 20)).ok());
  }
  std::vector<std::string_view> asked(keys.begin(), keys.end());
  {
    auto views = client->GetPrefixViews(asked);
    ASSERT_TRUE(views.ok()) << views.status();
    EXPECT_EQ(views->size(), 3u) << "the prefix ends where the bound is reached";
    for (size_t i = 0; i < views->size(); ++i) {
      EXPECT_EQ((*views)[i].key(), keys[i]);
      auto want = PageBytes(keys[i], 1 << 20);
      EXPECT_TRUE(std::equal(want.begin(), want.end(), (*views)[i].data())) << i;
    }
    EXPECT_TRUE(absl::IsResourceExhausted(client->GetView(keys[3]).status()));
  }
  auto view = client->GetView(keys[3]);
  EXPECT_TRUE(view.ok()) << "released views make room: " << view.status();
}

// A removed key's view keeps its bytes, unchanged, while new puts take the
// pool's memory (the view detaches into private memory before its lease on
// the old memory ends).
TEST(ViewTest, SurvivesRemoveAndReuse) {
  auto cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster);
  ASSERT_NE(client, nullptr);
  auto page = PageBytes("view/removed", 1 << 20);
  ASSERT_TRUE(client->Put("view/removed", page).ok());
  auto view = client->GetView("view/removed");
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(client->Remove("view/removed").ok());
  ASSERT_TRUE(WaitFor([&] { return view->detached(); })) << "the view never detached";
  // Past the lease, fill the pool with other bytes (evicting as needed).
  absl::SleepFor(absl::Seconds(3));
  for (int i = 0; i < 48; ++i) {
    std::string key = absl::StrFormat("view/filler/%d", i);
    (void)client->Put(key, PageBytes(key, 1 << 20));
  }
  EXPECT_TRUE(std::equal(page.begin(), page.end(), view->data()))
      << "a held view changed after its key was removed";
  EXPECT_FALSE(view->stale());
}

// Eviction while a view is held: the view's renewals keep its key leased,
// so filling the pool to three times its size evicts other keys, never the
// viewed one (nor does an explicit Evict), and the view's bytes stay as they
// were. Once the view is released and its last lease has run out, the key
// is evictable again: its memory is reused only after the release.
TEST(ViewTest, HeldViewKeepsItsKeyFromEviction) {
  auto cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster);
  ASSERT_NE(client, nullptr);
  Admin admin(*client);
  auto page = PageBytes("view/held", 1 << 20);
  ASSERT_TRUE(client->Put("view/held", page).ok());
  {
    auto view = client->GetView("view/held");
    ASSERT_TRUE(view.ok()) << view.status();
    int stored = 0;
    for (int i = 0; i < 96; ++i) {
      std::string key = absl::StrFormat("view/pressure/%d", i);
      stored += client->Put(key, PageBytes(key, 1 << 20)).ok() ? 1 : 0;
    }
    EXPECT_GT(stored, 32) << "the fillers did not go past the 32 MiB pool: nothing was evicted";
    auto present = client->Exists("view/held");
    ASSERT_TRUE(present.ok()) << present.status();
    EXPECT_TRUE(*present) << "a key with a live view was evicted";
    auto evicted = admin.Evict("view/held");
    ASSERT_TRUE(evicted.ok()) << evicted.status();
    EXPECT_EQ(*evicted, 0u) << "Evict took a key with a live view";
    EXPECT_TRUE(std::equal(page.begin(), page.end(), view->data()))
        << "a held view changed under eviction pressure";
  }
  EXPECT_TRUE(WaitFor([&] {
    auto evicted = admin.Evict("view/held");
    return evicted.ok() && *evicted == 1;
  })) << "the key stayed unevictable after its view was released";
}

// A node that ends leaves its views readable, marked stale; gets then miss.
TEST(ViewTest, NodeDeathMarksViewsStale) {
  auto cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  auto client = Connect(*cluster);
  ASSERT_NE(client, nullptr);
  auto page = PageBytes("view/node", 512 << 10);
  ASSERT_TRUE(client->Put("view/node", page).ok());
  auto view = client->GetView("view/node");
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(cluster->KillNode(0).ok());
  ASSERT_TRUE(WaitFor([&] { return view->stale(); })) << "the view of a dead node is not stale";
  EXPECT_TRUE(std::equal(page.begin(), page.end(), view->data())) << "the mapping must stay";
  ASSERT_TRUE(cluster->WaitForNodeDown(0, absl::Seconds(20)).ok());
  EXPECT_TRUE(WaitFor([&] {
    auto got = client->Get("view/node");
    return !got.ok() && (absl::IsNotFound(got.status()) || absl::IsUnavailable(got.status()));
  })) << "a get of a dead node's key must miss";
}

}  // namespace
}  // namespace unipool
