#include "output.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/common/units.h"
#include "unipool/web/pool_view.h"

namespace unipool::ctl {
namespace {

constexpr absl::Duration kRedrawInterval = absl::Milliseconds(100);
constexpr absl::Duration kFirstDrawDelay = absl::Milliseconds(300);
constexpr int kDefaultTerminalWidth = 80;

int TerminalWidth() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 40) return size.ws_col;
  return kDefaultTerminalWidth;
}

// Columns a string takes on a terminal: UTF-8 continuation bytes take none.
size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (unsigned char c : s) width += (c & 0xC0) == 0x80 ? 0 : 1;
  return width;
}

std::string Amount(uint64_t n, bool bytes) {
  return bytes ? FormatSize(n) : absl::StrFormat("%d", n);
}

}  // namespace

void Table::Column(std::string header, bool right) {
  headers_.push_back(std::move(header));
  right_.push_back(right);
}

void Table::Row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::Print() const {
  std::vector<size_t> width(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    width[c] = DisplayWidth(headers_[c]);
    for (const auto& row : rows_) width[c] = std::max(width[c], DisplayWidth(row[c]));
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      bool last = c + 1 == cells.size();
      std::string pad(width[c] - DisplayWidth(cells[c]), ' ');
      if (right_[c]) {
        line += pad + cells[c];
      } else {
        line += cells[c];
        if (!last) line += pad;  // no trailing blanks
      }
      if (!last) line += "  ";
    }
    std::printf("%s\n", line.c_str());
  };
  print_row(headers_);
  for (const auto& row : rows_) print_row(row);
}

std::string FormatAge(absl::Duration age) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(age));
  if (s < 120) return absl::StrFormat("%ds", s);
  if (s < 120 * 60) return absl::StrFormat("%dm", s / 60);
  if (s < 48 * 3600) return absl::StrFormat("%dh", s / 3600);
  return absl::StrFormat("%dd", s / 86400);
}

std::string FormatPercent(double fraction) {
  if (fraction < 0) return "-";
  return absl::StrFormat("%.1f%%", 100 * fraction);
}

std::string FormatRate(double per_second) {
  if (per_second >= 100) return absl::StrFormat("%.0f", per_second);
  if (per_second >= 10) return absl::StrFormat("%.1f", per_second);
  return absl::StrFormat("%.2f", per_second);
}

std::string DisplayKey(std::string_view key) {
  std::string out;
  for (unsigned char c : key) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string OneLine(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void PrintJson(const nlohmann::ordered_json& json) {
  std::printf("%s\n", DumpJson(json, /*pretty=*/true).c_str());
}

bool ProgressWanted() {
  if (!isatty(STDERR_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

Progress::Progress(std::string label, uint64_t total, bool bytes, std::string unit)
    : label_(std::move(label)),
      bytes_(bytes),
      unit_(unit.empty() ? "" : " " + unit),
      enabled_(ProgressWanted()),
      start_(absl::Now()),
      total_(total) {
  if (!enabled_) return;
  drawer_ = std::thread([this] {
    // Quick work shows no bar at all.
    if (stop_.WaitForNotificationWithTimeout(kFirstDrawDelay)) return;
    drawn_ = true;
    int frame = 0;
    do {
      Draw(frame++);
    } while (!stop_.WaitForNotificationWithTimeout(kRedrawInterval));
  });
}

Progress::~Progress() { Finish(); }

void Progress::Finish() {
  if (!enabled_ || stop_.HasBeenNotified()) return;
  stop_.Notify();
  drawer_.join();
  if (drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

void Progress::Draw(int frame) {
  uint64_t done = done_.load(std::memory_order_relaxed);
  uint64_t total = total_.load(std::memory_order_relaxed);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  std::string amount;
  if (total > 0) {
    amount = absl::StrFormat("  %s / %s%s", Amount(done, bytes_), Amount(total, bytes_), unit_);
  } else if (done > 0) {
    amount = absl::StrFormat("  %s%s", Amount(done, bytes_), unit_);
  }
  std::string tail = absl::StrFormat("%s  %.1fs", amount, seconds);
  int width = TerminalWidth() - 1;
  std::string label = label_;
  int bar_width = std::clamp(width - static_cast<int>(label.size() + tail.size()) - 10, 10, 40);
  if (static_cast<int>(label.size() + tail.size()) + bar_width + 10 > width) {
    size_t keep = std::max(8, width - static_cast<int>(tail.size()) - bar_width - 10);
    if (label.size() > keep) label = label.substr(0, keep - 3) + "...";
  }
  std::string bar(bar_width, ' ');
  std::string percent;
  if (total > 0) {
    double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    int filled = static_cast<int>(fraction * bar_width);
    for (int i = 0; i < filled; ++i) bar[i] = '=';
    if (filled < bar_width) bar[filled] = '>';
    percent = absl::StrFormat(" %3d%%", static_cast<int>(fraction * 100));
  } else {
    // Unknown total: a marker sweeping back and forth.
    int span = 2 * (bar_width - 3);
    int at = frame % span;
    if (at > bar_width - 3) at = span - at;
    bar.replace(at, 3, "<=>");
  }
  std::fprintf(stderr, "\r\033[K%s [%s]%s%s", label.c_str(), bar.c_str(), percent.c_str(),
               tail.c_str());
  std::fflush(stderr);
}

}  // namespace unipool::ctl
