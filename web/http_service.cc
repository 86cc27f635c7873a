#include "unipool/web/http_service.h"

#include <httplib.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "dashboard_page.h"
#include "unipool/common/log.h"
#include "unipool/common/socket.h"
#include "unipool/web/pool_view.h"

namespace unipool {
namespace {

// A dashboard or two and a Prometheus scraper: a few threads are plenty.
constexpr size_t kHttpThreads = 4;
// Browsers keep connections open; do not let idle ones hold every thread.
constexpr time_t kKeepAliveSeconds = 2;
// The charts' span, and the most /api/status?history= returns.
constexpr int kMaxHistorySeconds = HttpService::kMaxHistorySeconds;

int HistoryParam(const httplib::Request& request) {
  if (!request.has_param("history")) return 0;
  int seconds = std::atoi(request.get_param_value("history").c_str());
  return std::clamp(seconds, 0, kMaxHistorySeconds);
}

}  // namespace

HttpService::HttpService(StateSource state, MetricsSource metrics)
    : state_(std::move(state)), metrics_(std::move(metrics)) {}

HttpService::~HttpService() { Stop(); }

absl::Status HttpService::Start(const std::string& listen_address) {
  absl::StatusOr<HostPort> where = ParseHostPort(listen_address);
  if (!where.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--http %s: %s", listen_address, where.status().message()));
  }
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  server_->set_keep_alive_timeout(kKeepAliveSeconds);

  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(kDashboardHtml, "text/html; charset=utf-8");
  });
  server_->Get("/api/status", [this](const httplib::Request& req, httplib::Response& res) {
    int history = HistoryParam(req);
    PoolState state = state_();
    PoolMetrics metrics = metrics_(std::max(history, kRateWindowSeconds));
    std::string body = DumpJson(PoolJson(state, metrics, absl::ToUnixMillis(absl::Now()), history),
                                /*pretty=*/false);
    res.set_header("Cache-Control", "no-store");
    res.set_content(body, "application/json");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    PoolState state = state_();
    PoolMetrics metrics = metrics_(0);
    res.set_content(PrometheusText(state, metrics), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      res.set_content(absl::StrFormat("no page at %s: try / , /api/status or /metrics\n", req.path),
                      "text/plain; charset=utf-8");
    }
  });
  server_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
    // One line per failed request; the dashboard's once-a-second polls that
    // succeed are not events worth a log line.
    if (res.status >= 400) {
      LogWarning("http %s %s from %s: %d", req.method, req.path, req.remote_addr, res.status);
    }
  });

  if (where->port == 0) {
    int port = server_->bind_to_any_port(where->host);
    if (port <= 0) {
      return absl::UnavailableError(absl::StrFormat("--http %s: cannot bind", listen_address));
    }
    where->port = static_cast<uint16_t>(port);
  } else if (!server_->bind_to_port(where->host, where->port)) {
    return absl::UnavailableError(
        absl::StrFormat("--http %s: cannot bind (address in use or not local)", listen_address));
  }
  bool v6 = where->host.find(':') != std::string::npos;
  address_ = v6 ? absl::StrFormat("[%s]:%d", where->host, where->port)
                : absl::StrFormat("%s:%d", where->host, where->port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void HttpService::Stop() {
  if (server_ == nullptr) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace unipool
