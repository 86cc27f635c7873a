#include "chromium.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "unipool/platform/process.h"

namespace unipool::testing {
namespace {

using json = nlohmann::json;

constexpr absl::Duration kCallTimeout = absl::Seconds(30);

std::string FindChromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (access(path, X_OK) == 0) return path;
  }
  if (const char* env_path = std::getenv("PATH")) {
    std::vector<std::string> dirs = absl::StrSplit(env_path, ':');
    for (const std::string& dir : dirs) {
      std::string candidate = dir + "/chromium";
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Chromium>> Chromium::Launch(const std::string& work_dir, int width,
                                                           int height) {
  std::string binary = FindChromium();
  if (binary.empty()) {
    return absl::FailedPreconditionError(
        "chromium is not installed: run scripts/install-test-deps.sh (Debian package chromium)");
  }
  std::filesystem::create_directories(work_dir);
  std::string profile = work_dir + "/chromium-profile";
  std::filesystem::remove_all(profile);
  std::string log = work_dir + "/chromium.log";
  std::vector<std::string> args = {binary,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--hide-scrollbars",
                                   "--remote-debugging-pipe",
                                   "--user-data-dir=" + profile,
                                   absl::StrFormat("--window-size=%d,%d", width, height),
                                   "about:blank"};
  int to[2], from[2];
  if (pipe(to) != 0 || pipe(from) != 0) return absl::InternalError("pipe failed");
  auto watch = platform::PrepareParentWatch();
  if (!watch.ok()) return watch.status();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    platform::DieWithParent(*watch);
    // The browser reads commands on fd 3 and writes answers on fd 4.
    int in = dup(to[0]), out = dup(from[1]);
    dup2(in, 3);
    dup2(out, 4);
    for (int fd : {to[0], to[1], from[0], from[1], in, out}) {
      if (fd > 4) close(fd);
    }
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  std::unique_ptr<Chromium> browser(new Chromium());
  browser->pid_ = pid;
  browser->to_browser_ = to[1];
  browser->from_browser_ = from[0];
  fcntl(to[1], F_SETFD, FD_CLOEXEC);
  fcntl(from[0], F_SETFD, FD_CLOEXEC);
  // The first answer proves the browser is up and speaking the protocol.
  absl::StatusOr<json> version = browser->Call("Browser.getVersion", json::object(), false);
  if (!version.ok()) {
    return absl::Status(version.status().code(),
                        absl::StrFormat("%s (chromium log: %s)", version.status().message(), log));
  }
  return browser;
}

Chromium::~Chromium() {
  if (pid_ > 0) {
    (void)Call("Browser.close", json::object(), false);
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline && waitpid(pid_, nullptr, WNOHANG) == 0) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (waitpid(pid_, nullptr, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  if (to_browser_ >= 0) close(to_browser_);
  if (from_browser_ >= 0) close(from_browser_);
}

absl::StatusOr<json> Chromium::Call(const std::string& method, json params, bool in_tab) {
  int id = next_id_++;
  json message = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (in_tab) message["sessionId"] = session_;
  std::string text = message.dump();
  text.push_back('\0');
  size_t sent = 0;
  while (sent < text.size()) {
    ssize_t n = write(to_browser_, text.data() + sent, text.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("chromium closed its command pipe");
    sent += n;
  }
  absl::Time deadline = absl::Now() + kCallTimeout;
  while (true) {
    size_t end;
    while ((end = buffer_.find('\0')) != std::string::npos) {
      std::string one = buffer_.substr(0, end);
      buffer_.erase(0, end + 1);
      json reply = json::parse(one, nullptr, /*allow_exceptions=*/false);
      if (reply.is_discarded() || !reply.contains("id") || reply["id"] != id) continue;  // an event
      if (reply.contains("error")) {
        return absl::InternalError(absl::StrFormat("%s: %s", method, reply["error"].dump()));
      }
      return reply["result"];
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrFormat("%s: no answer from chromium", method));
    }
    pollfd fd{from_browser_, POLLIN, 0};
    int ready = poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[65536];
    ssize_t n = read(from_browser_, buf, sizeof(buf));
    if (n <= 0) return absl::UnavailableError(absl::StrFormat("%s: chromium exited", method));
    buffer_.append(buf, n);
  }
}

absl::Status Chromium::Open(const std::string& url) {
  absl::StatusOr<json> target = Call("Target.createTarget", {{"url", url}}, false);
  if (!target.ok()) return target.status();
  absl::StatusOr<json> attached = Call(
      "Target.attachToTarget", {{"targetId", (*target)["targetId"]}, {"flatten", true}}, false);
  if (!attached.ok()) return attached.status();
  session_ = (*attached)["sessionId"];
  return absl::OkStatus();
}

absl::StatusOr<json> Chromium::Evaluate(const std::string& expression) {
  absl::StatusOr<json> result =
      Call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}}, true);
  if (!result.ok()) return result.status();
  if (result->contains("exceptionDetails")) {
    return absl::InternalError(
        absl::StrFormat("'%s' threw: %s", expression, (*result)["exceptionDetails"].dump()));
  }
  const json& value = (*result)["result"];
  return value.contains("value") ? value["value"] : json(nullptr);
}

absl::StatusOr<std::string> Chromium::Screenshot() {
  absl::StatusOr<json> shot = Call("Page.captureScreenshot", {{"format", "png"}}, true);
  if (!shot.ok()) return shot.status();
  std::string png;
  if (!absl::Base64Unescape((*shot)["data"].get<std::string>(), &png)) {
    return absl::InternalError("screenshot is not base64");
  }
  return png;
}

}  // namespace unipool::testing
