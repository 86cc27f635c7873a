#include "unipool/common/units.h"

#include <cctype>
#include <charconv>
#include <limits>

#include "absl/strings/str_format.h"

namespace unipool {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  std::string_view s = Trim(text);
  uint64_t number = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), number);
  size_t digits = static_cast<size_t>(end - s.data());
  if (digits == 0 || error != std::errc()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad size '%s': expected a number with an optional unit, e.g. 8GiB", text));
  }
  std::string unit(Trim(s.substr(digits)));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int shift;
  if (unit.empty() || unit == "b")
    shift = 0;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    shift = 10;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    shift = 20;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    shift = 30;
  else if (unit == "t" || unit == "tb" || unit == "tib")
    shift = 40;
  else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad size '%s': unknown unit '%s' (use B, KiB, MiB, GiB or TiB)", text, unit));
  }
  if (number == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("bad size '%s': must be positive", text));
  }
  if (number > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return absl::InvalidArgumentError(absl::StrFormat("bad size '%s': too large", text));
  }
  return number << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  double value = static_cast<double>(bytes);
  int unit = 0;
  // 1023.96 KiB would print as "1024.0 KiB": move up a unit first.
  while (value >= 1024 - 0.05 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

}  // namespace unipool
