// SlabAllocator: best fit over coalesced free extents
// (unipool/directory/allocator.h).
//
// Every test checks the allocator against an independent model: a std::map of
// the ranges handed out. From the model alone we know which ranges are free,
// how many maximal free extents there are (= what a perfectly coalescing
// allocator must hold) and the largest one, so Allocate's success or failure
// and the allocator's own accounting can be verified after every operation.
#include "unipool/directory/allocator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace unipool {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
constexpr uint64_t kPage = kAllocationAlignment;

// The free space implied by a set of used ranges.
struct FreeSummary {
  uint64_t free_bytes = 0;
  uint64_t extents = 0;
  uint64_t largest = 0;
};

// Independent record of what the allocator has handed out.
class Model {
 public:
  explicit Model(uint64_t capacity) : capacity_(capacity) {}

  // Records an allocation of `length` (rounded) at `offset`; a test failure
  // when it is misaligned, leaves the slab or overlaps a live range.
  void Add(uint64_t offset, uint64_t length) {
    uint64_t rounded = RoundUpToAllocation(length);
    EXPECT_EQ(offset % kPage, 0u) << "offset " << offset;
    EXPECT_LE(offset + rounded, capacity_) << "range [" << offset << ", +" << rounded << ")";
    auto next = used_.lower_bound(offset);
    if (next != used_.end()) {
      EXPECT_LE(offset + rounded, next->first)
          << "[" << offset << ", +" << rounded << ") overlaps live range at " << next->first;
    }
    if (next != used_.begin()) {
      auto prev = std::prev(next);
      EXPECT_LE(prev->first + prev->second, offset)
          << "[" << offset << ", +" << rounded << ") overlaps live range at " << prev->first;
    }
    used_[offset] = rounded;
    used_bytes_ += rounded;
  }

  void Remove(uint64_t offset) {
    auto it = used_.find(offset);
    ASSERT_NE(it, used_.end());
    used_bytes_ -= it->second;
    used_.erase(it);
  }

  FreeSummary Free() const {
    FreeSummary summary;
    uint64_t at = 0;
    auto gap = [&](uint64_t start, uint64_t end) {
      if (end <= start) return;
      summary.free_bytes += end - start;
      summary.extents++;
      summary.largest = std::max(summary.largest, end - start);
    };
    for (const auto& [offset, length] : used_) {
      gap(at, offset);
      at = offset + length;
    }
    gap(at, capacity_);
    return summary;
  }

  // The allocator's accounting must match the model exactly: same bytes in
  // use, and its free extents are the maximal gaps (i.e. fully coalesced).
  void Check(const SlabAllocator& allocator) const {
    FreeSummary expected = Free();
    EXPECT_EQ(allocator.used() + allocator.free_bytes(), allocator.capacity());
    EXPECT_EQ(allocator.used(), used_bytes_);
    EXPECT_EQ(allocator.free_bytes(), expected.free_bytes);
    EXPECT_EQ(allocator.free_extents(), expected.extents) << "free extents not coalesced";
    EXPECT_EQ(allocator.largest_free(), expected.largest);
  }

  const std::map<uint64_t, uint64_t>& used() const { return used_; }
  uint64_t used_bytes() const { return used_bytes_; }

 private:
  uint64_t capacity_;
  uint64_t used_bytes_ = 0;
  std::map<uint64_t, uint64_t> used_;  // offset -> rounded length
};

// Allocates through the model: checks that Allocate fails exactly when the
// model says no free gap is large enough.
std::optional<uint64_t> AllocateChecked(SlabAllocator& allocator, Model& model, uint64_t length) {
  bool fits = model.Free().largest >= RoundUpToAllocation(length);
  std::optional<uint64_t> offset = allocator.Allocate(length);
  EXPECT_EQ(offset.has_value(), fits)
      << "Allocate(" << length << ") with largest free gap " << model.Free().largest;
  if (offset) model.Add(*offset, length);
  return offset;
}

TEST(SlabAllocatorTest, CapacityIsRoundedDownToTheAlignment) {
  EXPECT_EQ(SlabAllocator(2 * kPage + kPage / 2).capacity(), 2 * kPage);
  SlabAllocator tiny(kPage - 1);
  EXPECT_EQ(tiny.capacity(), 0u);
  EXPECT_EQ(tiny.free_bytes(), 0u);
  EXPECT_FALSE(tiny.Allocate(1).has_value());
}

TEST(SlabAllocatorTest, MixedSizesUpTo80MiBAreDisjointAndInside) {
  // KV-cache sizes from the design notes, plus unaligned lengths.
  const std::vector<uint64_t> sizes = {4 * KiB,  64 * KiB,  2 * MiB, 5 * MiB, 32 * MiB,
                                       80 * MiB, 256 * KiB, 5000,    1,       80 * MiB + 1};
  SlabAllocator allocator(1 * GiB);
  Model model(allocator.capacity());
  size_t successes = 0;
  size_t failures = 0;
  // Cycle through the sizes until every one of them fails.
  for (int round = 0; round < 1000 && failures < sizes.size(); ++round) {
    failures = 0;
    for (uint64_t size : sizes) {
      if (AllocateChecked(allocator, model, size)) {
        ++successes;
      } else {
        ++failures;
      }
      model.Check(allocator);
    }
  }
  EXPECT_EQ(failures, sizes.size());
  EXPECT_GT(successes, 20u);
  // Only small leftovers remain: nothing of 4 KiB fits anymore, since 1-byte
  // and 4 KiB requests filled every hole.
  EXPECT_EQ(allocator.free_bytes(), 0u);
}

TEST(SlabAllocatorTest, FillsToFullWithOneUnitItems) {
  const uint64_t capacity = 64 * MiB;
  SlabAllocator allocator(capacity);
  Model model(capacity);
  uint64_t count = 0;
  while (AllocateChecked(allocator, model, kPage)) ++count;
  EXPECT_EQ(count, capacity / kPage);
  EXPECT_EQ(allocator.used(), capacity);
  EXPECT_EQ(allocator.free_bytes(), 0u);
  EXPECT_EQ(allocator.largest_free(), 0u);
  EXPECT_EQ(allocator.free_extents(), 0u);
  EXPECT_FALSE(allocator.Allocate(1).has_value());
  model.Check(allocator);
}

TEST(SlabAllocatorTest, FreedSpaceIsReused) {
  const uint64_t capacity = 1 * MiB;
  SlabAllocator allocator(capacity);
  Model model(capacity);
  std::vector<uint64_t> offsets;
  while (auto offset = AllocateChecked(allocator, model, kPage)) offsets.push_back(*offset);
  ASSERT_EQ(offsets.size(), capacity / kPage);
  std::sort(offsets.begin(), offsets.end());

  // One freed page comes straight back.
  allocator.Free(offsets[10], kPage);
  model.Remove(offsets[10]);
  EXPECT_EQ(allocator.Allocate(kPage), offsets[10]);
  model.Add(offsets[10], kPage);

  // Two adjacent freed pages serve one two-page request, but not a larger one.
  allocator.Free(offsets[20], kPage);
  allocator.Free(offsets[21], kPage);
  model.Remove(offsets[20]);
  model.Remove(offsets[21]);
  model.Check(allocator);
  EXPECT_FALSE(allocator.Allocate(2 * kPage + 1).has_value());
  EXPECT_EQ(allocator.Allocate(2 * kPage), offsets[20]);
  model.Add(offsets[20], 2 * kPage);
  model.Check(allocator);

  // Best fit: with a three-page hole and a one-page hole, a one-page request
  // takes the one-page hole and leaves the larger hole whole.
  for (int i = 30; i < 33; ++i) {
    allocator.Free(offsets[i], kPage);
    model.Remove(offsets[i]);
  }
  allocator.Free(offsets[50], kPage);
  model.Remove(offsets[50]);
  model.Check(allocator);
  EXPECT_EQ(allocator.Allocate(100), offsets[50]);
  model.Add(offsets[50], 100);
  EXPECT_EQ(allocator.largest_free(), 3 * kPage);
  EXPECT_EQ(allocator.Allocate(3 * kPage), offsets[30]);
  model.Add(offsets[30], 3 * kPage);
  EXPECT_EQ(allocator.free_bytes(), 0u);
  model.Check(allocator);
}

TEST(SlabAllocatorTest, FreeingEverythingInRandomOrderCoalescesToOneExtent) {
  const std::vector<uint64_t> sizes = {4 * KiB, 12 * KiB, 64 * KiB, 2 * MiB,
                                       5 * MiB, 32 * MiB, 80 * MiB, 7 * KiB + 3};
  SlabAllocator allocator(512 * MiB);
  Model model(allocator.capacity());
  std::vector<std::pair<uint64_t, uint64_t>> live;  // offset, requested length
  std::mt19937_64 rng(42);
  for (int i = 0; i < 5000; ++i) {
    uint64_t size = sizes[rng() % sizes.size()];
    if (auto offset = AllocateChecked(allocator, model, size)) live.emplace_back(*offset, size);
  }
  ASSERT_GT(live.size(), 50u);  // 92 with 16 KiB units, more with 4 KiB
  model.Check(allocator);
  std::shuffle(live.begin(), live.end(), rng);
  for (size_t i = 0; i < live.size(); ++i) {
    allocator.Free(live[i].first, live[i].second);
    model.Remove(live[i].first);
    if (i % 16 == 0) model.Check(allocator);
  }
  model.Check(allocator);
  EXPECT_EQ(allocator.free_extents(), 1u);
  EXPECT_EQ(allocator.largest_free(), allocator.capacity());
  EXPECT_EQ(allocator.free_bytes(), allocator.capacity());
  EXPECT_EQ(allocator.Allocate(allocator.capacity()), 0u);
}

TEST(SlabAllocatorTest, ClaimOfAFreeRangeSucceedsAndIsRespected) {
  SlabAllocator allocator(16 * MiB);
  Model model(allocator.capacity());
  ASSERT_TRUE(allocator.Claim(4 * MiB, 1 * MiB));
  model.Add(4 * MiB, 1 * MiB);
  model.Check(allocator);
  // An unaligned length is rounded up like Allocate's.
  ASSERT_TRUE(allocator.Claim(8 * MiB, 1));
  model.Add(8 * MiB, 1);
  model.Check(allocator);
  // Everything else can be allocated around the claimed ranges, disjointly.
  while (AllocateChecked(allocator, model, 256 * KiB)) {
  }
  while (AllocateChecked(allocator, model, kPage)) {
  }
  EXPECT_EQ(allocator.free_bytes(), 0u);
  model.Check(allocator);
  // A claimed range is returned with Free like an allocated one.
  allocator.Free(4 * MiB, 1 * MiB);
  model.Remove(4 * MiB);
  model.Check(allocator);
  EXPECT_EQ(allocator.Allocate(1 * MiB), 4 * MiB);
}

// Claim must refuse, changing nothing, whatever is not entirely free.
TEST(SlabAllocatorTest, ClaimRefusesUsedOverlappingAndOutOfRangeRanges) {
  const uint64_t capacity = 16 * MiB;
  SlabAllocator allocator(capacity);
  Model model(capacity);
  ASSERT_TRUE(allocator.Claim(1 * MiB, 1 * MiB));  // used: [1 MiB, 2 MiB)
  model.Add(1 * MiB, 1 * MiB);
  ASSERT_TRUE(allocator.Claim(capacity - kPage, kPage));  // used: the last page
  model.Add(capacity - kPage, kPage);
  model.Check(allocator);

  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::vector<std::pair<uint64_t, uint64_t>> refused = {
      {1 * MiB, 1 * MiB},                 // exactly the used range
      {1 * MiB + kPage, kPage},           // inside it
      {1 * MiB - kPage, 2 * kPage},       // overlapping its start
      {2 * MiB - kPage, 2 * kPage},       // overlapping its end
      {0, 4 * MiB},                       // covering it
      {capacity - 2 * kPage, 2 * kPage},  // overlapping the used last page
      {capacity, kPage},                  // starting at the end
      {capacity + 64 * MiB, kPage},       // far out of range
      {8 * MiB, capacity},                // straddling the end
      {4 * MiB + 1, kPage},               // unaligned offset
      {4 * MiB, 0},                       // empty
      {kMax - kPage + 1, kPage},          // offset + length overflows
      {4 * MiB, kMax - 2 * MiB},          // length overflows offset + length
  };
  for (const auto& [offset, length] : refused) {
    EXPECT_FALSE(allocator.Claim(offset, length)) << "Claim(" << offset << ", " << length << ")";
    model.Check(allocator);
  }
}

// A length so large that rounding it up to 4 KiB overflows must be refused
// like any other out-of-range length.
TEST(SlabAllocatorTest, ClaimRefusesLengthsWhoseRoundingOverflows) {
  const uint64_t capacity = 16 * MiB;
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (uint64_t length : {kMax, kMax - 1, kMax - (kPage - 2)}) {
    for (uint64_t offset : {uint64_t{0}, 4 * MiB}) {
      SlabAllocator allocator(capacity);
      Model model(capacity);
      EXPECT_FALSE(allocator.Claim(offset, length))
          << "Claim(" << offset << ", " << length << ") of more than the slab";
      model.Check(allocator);
    }
  }
}

// Same overflow through Allocate: no extent holds 2^64 - 1 bytes.
TEST(SlabAllocatorTest, AllocateOfMoreThanTheSlabFails) {
  SlabAllocator allocator(16 * MiB);
  Model model(allocator.capacity());
  EXPECT_FALSE(allocator.Allocate(16 * MiB + 1).has_value());
  for (uint64_t length : {std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63}) {
    EXPECT_FALSE(allocator.Allocate(length).has_value()) << "Allocate(" << length << ")";
    model.Check(allocator);
  }
}

// Random churn of log-uniform sizes 4 KiB..8 MiB on a 1 GiB slab held near
// 70% full: the workload mix the design notes expect (4 KiB pages up to
// multi-MiB blocks).
//
// The bound: after warm-up, the largest free extent stays >= 1/8 of all free
// space (so >= ~37 MiB of the ~300 MiB free, far above the 8 MiB maximum
// request), and therefore no request ever fails. Why it holds with margin:
// best fit puts each request in the smallest hole that fits, so small
// requests fill small holes instead of nibbling at large ones, and immediate
// coalescing merges every freed range with its free neighbours. Measured with
// this generator over 20 seeds: the minimum ratio is 0.36..0.46 within
// 20,000 operations and still 0.26..0.38 after 200,000, i.e. at least 2x
// above the asserted 1/8. (A first-fit or worst-fit allocator splits large
// extents first and falls well below this.)
TEST(SlabAllocatorTest, FragmentationStaysBoundedUnderRandomChurn) {
  const uint64_t capacity = 1 * GiB;
  const uint64_t target_used = capacity * 7 / 10;
  const uint64_t max_request = 8 * MiB;
  SlabAllocator allocator(capacity);
  Model model(capacity);
  std::mt19937_64 rng(20261125);
  std::uniform_real_distribution<double> log_size(std::log(4.0 * KiB), std::log(8.0 * MiB));
  std::vector<std::pair<uint64_t, uint64_t>> live;
  const int kSteps = 20000;
  const int kWarmUp = 2000;
  double worst_ratio = 1.0;
  uint64_t allocations = 0;
  for (int step = 0; step < kSteps; ++step) {
    if (allocator.used() < target_used || live.empty()) {
      uint64_t length =
          std::min<uint64_t>(static_cast<uint64_t>(std::exp(log_size(rng))), max_request);
      std::optional<uint64_t> offset = AllocateChecked(allocator, model, length);
      ASSERT_TRUE(offset.has_value())
          << "step " << step << ": Allocate(" << length << ") failed with "
          << allocator.free_bytes() << " bytes free, largest extent " << allocator.largest_free();
      live.emplace_back(*offset, length);
      ++allocations;
    } else {
      size_t i = rng() % live.size();
      allocator.Free(live[i].first, live[i].second);
      model.Remove(live[i].first);
      live[i] = live.back();
      live.pop_back();
    }
    if (step % 64 == 0) model.Check(allocator);
    ASSERT_EQ(allocator.used() + allocator.free_bytes(), allocator.capacity());
    if (step >= kWarmUp) {
      double ratio = static_cast<double>(allocator.largest_free()) /
                     static_cast<double>(allocator.free_bytes());
      worst_ratio = std::min(worst_ratio, ratio);
      ASSERT_GE(allocator.largest_free() * 8, allocator.free_bytes())
          << "step " << step << ": largest free extent " << allocator.largest_free()
          << " is under 1/8 of " << allocator.free_bytes() << " free bytes";
    }
  }
  model.Check(allocator);
  EXPECT_GT(allocations, static_cast<uint64_t>(kSteps / 3));
  // Churn really happened around the target, not just a fill.
  EXPECT_GT(allocator.used(), capacity / 2);
  RecordProperty("worst_largest_free_ratio", std::to_string(worst_ratio));
}

}  // namespace
}  // namespace unipool
