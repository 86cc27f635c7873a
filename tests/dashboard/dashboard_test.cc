// The dashboard against a running cluster: the page loaded in real headless
// Chromium shows the nodes and numbers the JSON API gives and updates by
// itself after a put; a screenshot goes to the build directory
// (build/dashboard.png) for people to look at. /metrics parses as
// Prometheus text (with the Prometheus Python client's own parser), and
// unipoolctl status --json is the API's document.
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "chromium.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "unipool/client.h"
#include "unipool/common/units.h"
#include "unipool/testing/subprocess.h"
#include "unipool/testing/test_cluster.h"
#include "unipool/testing/wait.h"
#include "unipool/tools/local_cluster.h"

namespace unipool {
namespace {

using ::nlohmann::json;
using ::unipool::testing::Chromium;

constexpr int kNodes = 3;
constexpr uint64_t kPoolSize = 64ull << 20;
constexpr absl::Duration kPageWait = absl::Seconds(20);

// build/bin/<test> -> build/
std::string BuildDir() { return std::filesystem::path(ExecutableDir()).parent_path().string(); }

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.nodes = kNodes;
    options.pool_size = kPoolSize;
    options.http_listen = "127.0.0.1:0";
    auto cluster = testing::StartTestCluster("dashboard", options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ASSERT_FALSE(cluster_->http_address().empty());
    ClientOptions client_options;
    client_options.directory = cluster_->directory_address();
    auto client = Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    auto [host, port] = HostAndPort(cluster_->http_address());
    http_ = std::make_unique<httplib::Client>(host, port);
    http_->set_read_timeout(10, 0);
  }
  void TearDown() override {
    http_.reset();
    client_.reset();
    cluster_.reset();
  }

  static std::pair<std::string, int> HostAndPort(const std::string& address) {
    size_t colon = address.rfind(':');
    return {address.substr(0, colon), std::stoi(address.substr(colon + 1))};
  }

  json Api(const std::string& path = "/api/status?history=60") {
    httplib::Result r = http_->Get(path);
    EXPECT_TRUE(r) << "GET " << path << ": " << httplib::to_string(r.error());
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    return json::parse(r->body);
  }

  // Puts `count` objects of `size` bytes under `prefix`.
  void PutObjects(const std::string& prefix, int count, size_t size) {
    for (int i = 0; i < count; ++i) {
      std::vector<uint8_t> value(size, static_cast<uint8_t>(i));
      ASSERT_TRUE(client_->Put(absl::StrFormat("%s/%d", prefix, i), value).ok());
    }
  }

  // Polls a JavaScript expression in the page until `ok(value)`, for at most
  // kPageWait; returns the last value.
  template <typename Pred>
  json WaitInPage(Chromium& browser, const std::string& expression, Pred ok) {
    absl::Time deadline = absl::Now() + kPageWait;
    json value;
    while (absl::Now() < deadline) {
      absl::StatusOr<json> v = browser.Evaluate(expression);
      if (v.ok()) {
        value = *v;
        if (ok(value)) return value;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "page never satisfied the wait on: " << expression
                  << " (last: " << value.dump() << ")";
    return value;
  }

  testing::TestCluster cluster_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<httplib::Client> http_;
};

// What the page shows, read from its live DOM.
constexpr char kPageState[] = R"js(({
  refreshes: Number(document.body.dataset.refreshes),
  nodesUp: document.getElementById('pool-nodes').textContent,
  capacity: document.getElementById('pool-capacity').textContent,
  used: document.getElementById('pool-used').textContent,
  objects: document.getElementById('pool-objects').textContent,
  puts: document.getElementById('total-puts').textContent,
  hitRate: document.getElementById('rate-hits').textContent,
  nodes: [...document.querySelectorAll('#nodes tr[data-node]')].map(tr => ({
    name: tr.dataset.node,
    cells: [...tr.children].map(td => td.textContent),
    objects: tr.querySelector('td.objects').textContent,
    barWidth: tr.querySelector('.bar .fill').style.width,
  })),
  requestLines: document.querySelectorAll('#chart-requests path').length,
  chartPoints: Number(document.getElementById('chart-requests').dataset.points || 0),
  error: document.getElementById('error').style.display,
}))js";

TEST_F(DashboardTest, PageShowsWhatTheApiSaysAndUpdatesAfterAPut) {
  PutObjects("before", 5, 256 << 10);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client_->Get(absl::StrFormat("before/%d", i)).ok());
  ASSERT_FALSE(client_->Get("before/missing").ok());  // a miss for the hit rate

  auto browser = Chromium::Launch(cluster_->work_dir(), 1280, 900);
  ASSERT_TRUE(browser.ok()) << browser.status();
  std::string url = absl::StrFormat("http://%s/", cluster_->http_address());
  ASSERT_TRUE((*browser)->Open(url).ok());

  json page = WaitInPage(**browser, kPageState, [](const json& p) {
    return p.is_object() && p["refreshes"].get<int>() >= 1 && p["nodes"].size() == kNodes;
  });
  json api = Api();
  ASSERT_TRUE(page.is_object());
  EXPECT_EQ(page["nodesUp"], absl::StrFormat("%d / %d", kNodes, kNodes));
  EXPECT_EQ(page["capacity"], FormatSize(api["pool"]["capacity"].get<uint64_t>()));
  EXPECT_EQ(page["capacity"], "192.0 MiB");
  EXPECT_EQ(page["used"], FormatSize(api["pool"]["used"].get<uint64_t>()));
  EXPECT_EQ(page["objects"], std::to_string(api["pool"]["objects"].get<int>()));
  EXPECT_EQ(page["objects"], "5");
  EXPECT_EQ(page["puts"], absl::StrFormat("%d since start", api["totals"]["puts"].get<int>()));
  EXPECT_EQ(page["error"], "none");
  ASSERT_EQ(page["nodes"].size(), static_cast<size_t>(kNodes));
  for (int i = 0; i < kNodes; ++i) {
    const json& row = page["nodes"][i];
    const json& node = api["nodes"][i];
    EXPECT_EQ(row["name"], node["name"]);
    EXPECT_EQ(row["objects"], std::to_string(node["objects"].get<int>()));
    std::vector<std::string> cells = row["cells"];
    EXPECT_EQ(cells[2], node["address"]);
    EXPECT_EQ(cells[3], "up");
    EXPECT_EQ(cells[4], "ok");
    EXPECT_EQ(cells[5], absl::StrJoin(node["transports"].get<std::vector<std::string>>(), ", "));
    EXPECT_EQ(cells[7], "64.0 MiB");
    EXPECT_TRUE(absl::StartsWith(cells[6], FormatSize(node["used"].get<uint64_t>()))) << cells[6];
    EXPECT_TRUE(absl::EndsWith(row["barWidth"].get<std::string>(), "%"));
  }

  // The page refreshes by itself: after a put it shows the new count
  // without being reloaded.
  int refreshes = page["refreshes"];
  PutObjects("after", 3, 1 << 20);
  EXPECT_EQ(Api()["pool"]["objects"], 8);
  page = WaitInPage(**browser, kPageState,
                    [](const json& p) { return p.is_object() && p["objects"] == "8"; });
  EXPECT_GT(page["refreshes"].get<int>(), refreshes);
  EXPECT_EQ(page["used"], FormatSize(Api()["pool"]["used"].get<uint64_t>()));

  // Charts draw the per-second history once a few seconds have closed.
  page = WaitInPage(**browser, kPageState, [](const json& p) {
    return p.is_object() && p["requestLines"].get<int>() >= 2 && p["chartPoints"].get<int>() >= 3;
  });
  EXPECT_NE(page["hitRate"], "–");

  absl::StatusOr<std::string> png = (*browser)->Screenshot();
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_GT(png->size(), 1000u);
  EXPECT_EQ(png->substr(1, 3), "PNG");
  std::string shot = BuildDir() + "/dashboard.png";
  std::ofstream(shot, std::ios::binary) << *png;
  std::printf("screenshot: %s\n", shot.c_str());
}

TEST_F(DashboardTest, ApiDocumentHasHistoryAndCounts) {
  PutObjects("api", 4, 4096);
  ASSERT_TRUE(client_->Get("api/0").ok());
  ASSERT_FALSE(client_->Get("api/none").ok());
  // The history counts whole seconds: wait until the one of the puts closed.
  json doc;
  ASSERT_TRUE(testing::WaitUntil([&] {
    doc = Api("/api/status?history=120");
    int puts = 0;
    if (doc["history"].is_array()) {
      for (const json& s : doc["history"]) puts += s["puts"].get<int>();
    }
    return puts == 4;
  })) << doc.dump();
  EXPECT_EQ(doc["pool"]["objects"], 4);
  EXPECT_EQ(doc["pool"]["nodes_up"], kNodes);
  EXPECT_EQ(doc["totals"]["puts"], 4);
  EXPECT_EQ(doc["totals"]["hits"], 1);
  EXPECT_EQ(doc["totals"]["misses"], 1);
  EXPECT_EQ(doc["totals"]["gets"], 2);
  ASSERT_TRUE(doc["history"].is_array());
  ASSERT_GE(doc["history"].size(), 1u);
  EXPECT_LE(doc["history"].size(), 120u);
  int puts = 0;
  int64_t last_t = 0;
  for (const json& s : doc["history"]) {
    puts += s["puts"].get<int>();
    EXPECT_GT(s["t"].get<int64_t>(), last_t);  // one entry per second, in order
    last_t = s["t"];
  }
  EXPECT_EQ(puts, 4);
  // Without ?history the document carries none.
  EXPECT_FALSE(Api("/api/status")["history"].is_array());

  httplib::Result page = http_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  // Self-contained: nothing loaded from anywhere else.
  EXPECT_FALSE(std::regex_search(page->body, std::regex(R"((src|href)\s*=\s*["']?(https?:)?//)")));
  httplib::Result missing = http_->Get("/no/such/page");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(DashboardTest, UnipoolctlJsonIsTheApiDocument) {
  PutObjects("cli", 2, 8192);
  json api = Api("/api/status");
  auto r = ::unipool::testing::Run({ExecutableDir() + "/unipoolctl", "--directory",
                                    cluster_->directory_address(), "status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json cli = json::parse(r.out);
  // Same shape, key for key (ordered), and the same pool.
  std::vector<std::string> api_keys, cli_keys;
  for (auto& [k, v] : api.items()) api_keys.push_back(k);
  for (auto& [k, v] : cli.items()) cli_keys.push_back(k);
  EXPECT_EQ(api_keys, cli_keys);
  EXPECT_EQ(cli["pool"]["objects"], api["pool"]["objects"]);
  EXPECT_EQ(cli["pool"]["capacity"], api["pool"]["capacity"]);
  EXPECT_EQ(cli["pool"]["used"], api["pool"]["used"]);
  EXPECT_EQ(cli["totals"]["puts"], api["totals"]["puts"]);
  ASSERT_EQ(cli["nodes"].size(), api["nodes"].size());
  for (size_t i = 0; i < api["nodes"].size(); ++i) {
    for (const char* k :
         {"id", "name", "host", "address", "state", "capacity", "used", "objects"}) {
      EXPECT_EQ(cli["nodes"][i][k], api["nodes"][i][k]) << k;
    }
  }
}

TEST_F(DashboardTest, MetricsParseAsPrometheusText) {
  PutObjects("metrics", 3, 4096);
  ASSERT_TRUE(client_->Get("metrics/1").ok());
  httplib::Result r = http_->Get("/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = r->body;

  // The exposition grammar, line by line: comments are HELP or TYPE, TYPE
  // comes before a family's samples, each sample is NAME{LABELS} VALUE.
  std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$)");
  std::regex type(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  std::set<std::string> typed;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  for (const std::string& l : lines) {
    std::smatch m;
    if (absl::StartsWith(l, "# HELP ")) continue;
    if (std::regex_match(l, m, type)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "family typed twice: " << l;
      continue;
    }
    ASSERT_TRUE(std::regex_match(l, m, sample)) << "not a Prometheus sample line: " << l;
    EXPECT_TRUE(typed.contains(m[1])) << "sample before its TYPE: " << l;
  }

  // And Prometheus's own parser (python3-prometheus-client) reads it all.
  constexpr char kParse[] = R"py(
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = [family.type, s.value]
print(json.dumps(out))
)py";
  auto parsed = ::unipool::testing::Run({"/usr/bin/python3", "-c", kParse}, {}, text);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  json samples = json::parse(parsed.out);
  json api = Api("/api/status");
  auto value = [&](const std::string& key) -> double {
    EXPECT_TRUE(samples.contains(key)) << key << " missing from " << parsed.out;
    return samples.contains(key) ? samples[key][1].get<double>() : -1;
  };
  auto type_of = [&](const std::string& key) {
    return samples.contains(key) ? samples[key][0].get<std::string>() : "";
  };
  EXPECT_EQ(value("unipool_objects"), api["pool"]["objects"].get<double>());
  EXPECT_EQ(value("unipool_pool_capacity_bytes"), kNodes * kPoolSize);
  EXPECT_EQ(value("unipool_nodes{state=up}"), kNodes);
  EXPECT_EQ(value("unipool_puts_total"), 3);
  EXPECT_EQ(type_of("unipool_puts_total"), "counter");
  EXPECT_EQ(value("unipool_gets_total{result=hit}"), 1);
  EXPECT_EQ(type_of("unipool_gets_total{result=hit}"), "counter");
  EXPECT_EQ(type_of("unipool_objects"), "gauge");
  for (int i = 0; i < kNodes; ++i) {
    std::string labels = absl::StrFormat("{address=%s,node=node%d}", cluster_->node_address(i), i);
    EXPECT_EQ(value("unipool_node_up" + labels), 1);
    EXPECT_EQ(value("unipool_node_capacity_bytes" + labels), kPoolSize);
    EXPECT_EQ(value("unipool_node_objects" + labels), api["nodes"][i]["objects"].get<double>());
  }
  for (auto& [key, v] : samples.items()) {
    EXPECT_NE(v[0], "unknown") << key << " has no TYPE the parser accepted";
  }
}

}  // namespace
}  // namespace unipool
