// Terminal output for unipoolctl: aligned tables, human durations, JSON, and
// a progress bar that is drawn only when stderr is a terminal.
#ifndef UNIPOOL_TOOLS_CTL_OUTPUT_H_
#define UNIPOOL_TOOLS_CTL_OUTPUT_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace unipool::ctl {

// Columns padded to their widest cell, two spaces apart; numeric columns
// (added with right = true) are right-aligned. Not thread-safe.
class Table {
 public:
  void Column(std::string header, bool right = false);
  // REQUIRES: as many cells as columns.
  void Row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Writes the header and the rows to stdout.
  void Print() const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// "12s", "5m", "3h", "2d": how long ago, roughly.
std::string FormatAge(absl::Duration age);
// "97.5%"; "-" for a negative fraction (nothing measured).
std::string FormatPercent(double fraction);
// "12.3" with two significant decimals for small rates.
std::string FormatRate(double per_second);
// A key as a table shows it: control bytes as \xNN and backslash doubled,
// so one key is one cell on one line (--json gives the exact bytes).
std::string DisplayKey(std::string_view key);
// A message made safe for one line (newlines become spaces).
std::string OneLine(std::string_view text);

// Pretty JSON on stdout.
void PrintJson(const nlohmann::ordered_json& json);

// True when progress is worth drawing: stderr is a terminal that is not
// "dumb".
bool ProgressWanted();

// A progress line on stderr, redrawn ten times a second by its own thread:
// a bar with percent when the total is known, else a moving marker; bytes
// and elapsed time either way. Draws nothing when ProgressWanted() is false.
// Work done within 0.3 s draws nothing. The line is erased when the Progress
// is finished or destroyed.
// Thread safety: Set and Add may be called from any thread.
class Progress {
 public:
  // `total` = 0: unknown. `bytes`: amounts are sizes, else counts of
  // `unit` ("objects").
  Progress(std::string label, uint64_t total, bool bytes, std::string unit = "");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Set(uint64_t done) { done_.store(done, std::memory_order_relaxed); }
  void Add(uint64_t delta) { done_.fetch_add(delta, std::memory_order_relaxed); }
  void SetTotal(uint64_t total) { total_.store(total, std::memory_order_relaxed); }
  // Stops drawing and erases the line. Idempotent.
  void Finish();

 private:
  void Draw(int frame);

  const std::string label_;
  const bool bytes_;
  const std::string unit_;
  const bool enabled_;
  const absl::Time start_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_;
  absl::Notification stop_;
  std::thread drawer_;
  bool drawn_ = false;  // written by drawer_, read after joining it
};

}  // namespace unipool::ctl

#endif  // UNIPOOL_TOOLS_CTL_OUTPUT_H_
