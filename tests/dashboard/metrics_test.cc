// Unit tests of what the dashboard computes: the directory's per-second
// request history (unipool/directory/metrics.h) and the pool view
// (unipool/web/pool_view.h).
#include "unipool/directory/metrics.h"

#include "gtest/gtest.h"
#include "unipool/web/pool_view.h"

namespace unipool {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

absl::Time At(double seconds) { return kStart + absl::Seconds(seconds); }

TEST(DirectoryMetricsTest, CountsGoToTheSecondTheyAreClosedIn) {
  DirectoryMetrics m(10, At(0.2));
  m.CountPuts(3);
  m.CountLookups(4, 1);
  m.Sample(At(0.9));  // second 0 has not ended
  EXPECT_TRUE(m.History(10).empty());
  m.Sample(At(1.1));
  std::vector<SecondCounts> h = m.History(10);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].unix_seconds, 1'000'000);
  EXPECT_EQ(h[0].counts.puts, 3u);
  EXPECT_EQ(h[0].counts.hits, 4u);
  EXPECT_EQ(h[0].counts.misses, 1u);
  m.CountRemoves(2);
  m.Sample(At(1.6));  // same second: nothing closes
  m.Sample(At(2.0));
  h = m.History(10);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].counts.removes, 2u);
  EXPECT_EQ(h[1].counts.puts, 0u);
  RequestCounts totals = m.Totals();
  EXPECT_EQ(totals.puts, 3u);
  EXPECT_EQ(totals.removes, 2u);
}

TEST(DirectoryMetricsTest, SkippedSecondsAreZerosAndTheRingKeepsTheLatest) {
  DirectoryMetrics m(5, At(0));
  m.CountPuts(7);
  m.Sample(At(3.5));  // seconds 0, 1, 2 close at once; the puts go to 2
  std::vector<SecondCounts> h = m.History(5);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].counts.puts, 0u);
  EXPECT_EQ(h[1].counts.puts, 0u);
  EXPECT_EQ(h[2].counts.puts, 7u);
  for (int s = 4; s <= 12; ++s) {
    m.CountPuts(s);
    m.Sample(At(s + 0.1));
  }
  h = m.History(100);
  ASSERT_EQ(h.size(), 5u);  // the ring's capacity
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].unix_seconds, 1'000'000 + 7 + static_cast<int64_t>(i));
    EXPECT_EQ(h[i].counts.puts, 8u + i);  // counted just before second 8+i+1 closed it
  }
  EXPECT_EQ(m.History(2).size(), 2u);
  EXPECT_EQ(m.History(2)[1].unix_seconds, 1'000'000 + 11);
  // A clock jump far ahead keeps only what the ring holds.
  m.Sample(At(10'000));
  h = m.History(100);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.back().unix_seconds, 1'000'000 + 9'999);
}

TEST(DirectoryMetricsTest, EvictionsTotalOnlyGrows) {
  DirectoryMetrics m(5, At(0));
  m.SetEvictionsTotal(5);
  m.SetEvictionsTotal(3);
  EXPECT_EQ(m.Totals().evictions, 5u);
  m.Sample(At(1));
  EXPECT_EQ(m.History(1)[0].counts.evictions, 5u);
}

PoolMetrics WithHistory(std::vector<PoolMetrics::Second> seconds) {
  PoolMetrics m;
  m.history = std::move(seconds);
  return m;
}

TEST(PoolViewTest, RatesAreMeansOverTheLatestSeconds) {
  PoolMetrics m = WithHistory({{1, 100, 100, 100, 0, 100},  // outside a 2 s window
                               {2, 4, 3, 1, 0, 0},
                               {3, 2, 5, 1, 0, 2}});
  Rates r = RecentRates(m, 2);
  EXPECT_EQ(r.window_seconds, 2);
  EXPECT_DOUBLE_EQ(r.puts_per_second, 3);
  EXPECT_DOUBLE_EQ(r.gets_per_second, 5);
  EXPECT_DOUBLE_EQ(r.hit_rate, 0.8);
  EXPECT_DOUBLE_EQ(r.evictions_per_second, 1);
  EXPECT_LT(RecentRates(WithHistory({{1, 5, 0, 0, 0, 0}})).hit_rate, 0);  // no gets
  EXPECT_EQ(RecentRates(PoolMetrics{}).window_seconds, 0);
}

TEST(PoolViewTest, NodeStateAndLink) {
  NodeState n;
  EXPECT_EQ(NodeStateName(n), "down");
  EXPECT_EQ(LinkState(n), "lost");
  n.up = true;
  n.since_heartbeat = absl::Milliseconds(900);
  EXPECT_EQ(NodeStateName(n), "up");
  EXPECT_EQ(LinkState(n), "ok");
  n.since_heartbeat = absl::Milliseconds(2500);
  EXPECT_EQ(LinkState(n), "late");
  n.draining = true;
  EXPECT_EQ(NodeStateName(n), "draining");
}

TEST(PoolViewTest, JsonDocument) {
  PoolState s;
  s.capacity = 1000;
  s.used = 1200;  // held memory can briefly exceed capacity in a report
  s.objects = 3;
  NodeState n;
  n.name = "mac1";
  n.up = true;
  n.capacity = 1000;
  n.used = 200;
  n.transports = {"tcp", "rdma-uc"};
  s.nodes = {n};
  PoolMetrics m = WithHistory({{5, 1, 2, 0, 0, 0}});
  m.hits = 2;
  m.uptime_ms = 61'000;
  auto doc = PoolJson(s, m, 123, 0);
  EXPECT_EQ(doc["pool"]["free"], 0);
  EXPECT_EQ(doc["pool"]["nodes_up"], 1);
  EXPECT_EQ(doc["uptime_seconds"], 61);
  EXPECT_EQ(doc["totals"]["gets"], 2);
  EXPECT_EQ(doc["rates"]["hit_rate"], 1.0);
  EXPECT_EQ(doc["nodes"][0]["free"], 800);
  EXPECT_EQ(doc["nodes"][0]["transports"][1], "rdma-uc");
  EXPECT_FALSE(doc.contains("history"));
  auto with_history = PoolJson(s, m, 123, 60);
  ASSERT_EQ(with_history["history"].size(), 1u);
  EXPECT_EQ(with_history["history"][0]["t"], 5);
  EXPECT_EQ(with_history["history"][0]["gets"], 2);
  // Keys that are not UTF-8 do not break the document.
  nlohmann::ordered_json bad = {{"key", std::string("a\xff")}};
  EXPECT_EQ(DumpJson(bad, false), "{\"key\":\"a\xef\xbf\xbd\"}");
}

TEST(PoolViewTest, PrometheusLabelValuesAreEscaped) {
  PoolState s;
  NodeState n;
  n.name = "we\"ird\\name\nx";
  n.data_address = "h:1";
  n.up = true;
  s.nodes = {n};
  std::string text = PrometheusText(s, PoolMetrics{});
  EXPECT_NE(text.find("unipool_node_up{node=\"we\\\"ird\\\\name\\nx\",address=\"h:1\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE unipool_gets_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("unipool_directory_uptime_seconds 0\n"), std::string::npos);
}

// A replicated pool's directories: one role sample per directory and role,
// the leader's term, each one's lag; a lone directory shows none.
TEST(PoolViewTest, DirectoriesInJsonAndMetrics) {
  PoolState s;
  EXPECT_EQ(PrometheusText(s, PoolMetrics{}).find("unipool_directory_role"), std::string::npos);
  s.directories = {{.address = "a:7300", .role = DirectoryRole::kLeader, .term = 7, .position = 9},
                   {.address = "b:7300",
                    .replication_address = "b:7301",
                    .role = DirectoryRole::kStandby,
                    .term = 7,
                    .position = 6,
                    .lag = 3}};
  std::string text = PrometheusText(s, PoolMetrics{});
  EXPECT_NE(
      text.find("unipool_directory_role{address=\"a:7300\",replication=\"\",role=\"leader\"} 1"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "unipool_directory_role{address=\"b:7300\",replication=\"b:7301\",role=\"leader\"} 0"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("unipool_directory_term 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("unipool_directory_lag_writes{address=\"b:7300\",replication=\"b:7301\"} 3"),
            std::string::npos)
      << text;
  auto doc = PoolJson(s, PoolMetrics{}, 0, 0);
  ASSERT_EQ(doc["directories"].size(), 2u);
  EXPECT_EQ(doc["directories"][1]["role"], "standby");
  EXPECT_EQ(doc["directories"][1]["lag"], 3);
  EXPECT_EQ(doc["unreplicated"], false);
}

}  // namespace
}  // namespace unipool
