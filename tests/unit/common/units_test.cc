// ParseSize / FormatSize (unipool/common/units.h): binary units, strict parsing.
#include "unipool/common/units.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace unipool {
namespace {

constexpr uint64_t KiB = 1ull << 10;
constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t GiB = 1ull << 30;
constexpr uint64_t TiB = 1ull << 40;

void ExpectSize(const std::string& text, uint64_t expected) {
  auto parsed = ParseSize(text);
  ASSERT_TRUE(parsed.ok()) << "'" << text << "': " << parsed.status();
  EXPECT_EQ(*parsed, expected) << "'" << text << "'";
}

void ExpectBad(const std::string& text) {
  auto parsed = ParseSize(text);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
      << "'" << text << "' parsed as " << (parsed.ok() ? std::to_string(*parsed) : "error");
}

TEST(ParseSizeTest, AcceptsBinaryUnits) {
  ExpectSize("8GiB", 8 * GiB);
  ExpectSize("512MiB", 512 * MiB);
  ExpectSize("4k", 4 * KiB);
  ExpectSize("1048576", 1048576);
  ExpectSize(" 2 G ", 2 * GiB);
  ExpectSize("1", 1);
  ExpectSize("7B", 7);
  ExpectSize("7b", 7);
  ExpectSize("3KB", 3 * KiB);  // KB means KiB: memory is sized in binary units
  ExpectSize("3kib", 3 * KiB);
  ExpectSize("80MB", 80 * MiB);
  ExpectSize("80m", 80 * MiB);
  ExpectSize("2gb", 2 * GiB);
  ExpectSize("1T", TiB);
  ExpectSize("3TiB", 3 * TiB);
  ExpectSize("\t16 MiB\n", 16 * MiB);
  ExpectSize("18446744073709551615", std::numeric_limits<uint64_t>::max());
  ExpectSize("16777215T", 16777215ull * TiB);  // the largest count of TiB that fits
}

TEST(ParseSizeTest, RejectsMalformedText) {
  ExpectBad("");
  ExpectBad("   ");
  ExpectBad("abc");
  ExpectBad("GiB");
  ExpectBad("5XB");
  ExpectBad("5 G B");
  ExpectBad("5PiB");
  ExpectBad("1.5G");
  ExpectBad("-5");
  ExpectBad("+5");
  ExpectBad("0x10");
  ExpectBad("5 5");
  ExpectBad("5GiBs");
}

TEST(ParseSizeTest, RejectsZero) {
  ExpectBad("0");
  ExpectBad("0GiB");
  ExpectBad("000k");
}

TEST(ParseSizeTest, RejectsOverflow) {
  ExpectBad("18446744073709551616");     // 2^64
  ExpectBad("99999999999999999999999");  // far beyond
  ExpectBad("16777216T");                // 2^24 TiB = 2^64
  ExpectBad("17179869184GiB");           // 2^34 GiB = 2^64
  ExpectBad("18014398509481984k");       // 2^54 KiB = 2^64
  ExpectBad("18446744073709551615k");
}

TEST(FormatSizeTest, UsesBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1), "1 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1.0 KiB");
  EXPECT_EQ(FormatSize(4096), "4.0 KiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(80 * MiB), "80.0 MiB");
  EXPECT_EQ(FormatSize(GiB + GiB / 2), "1.5 GiB");
  EXPECT_EQ(FormatSize(512 * GiB), "512.0 GiB");
  EXPECT_EQ(FormatSize(3 * TiB), "3.0 TiB");
  EXPECT_EQ(FormatSize(2048 * TiB), "2.0 PiB");
  // No unit beyond PiB: the largest value stays in PiB.
  EXPECT_EQ(FormatSize(std::numeric_limits<uint64_t>::max()), "16384.0 PiB");
}

TEST(FormatSizeTest, ParsesBackForWholeUnits) {
  for (uint64_t size : {KiB, 4 * KiB, 512 * MiB, 8 * GiB, 2 * TiB}) {
    std::string text = FormatSize(size);
    // "512.0 MiB" -> "512 MiB"
    std::string whole = text.substr(0, text.find('.')) + text.substr(text.find(' '));
    ExpectSize(whole, size);
  }
}

}  // namespace
}  // namespace unipool
