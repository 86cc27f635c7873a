// ViewMaps: a released view's mapping serves the next view of the same
// range, shows the slab's current bytes, and the idle ones stay within
// their limits.
#include "unipool/shm/view_maps.h"

#include <cstring>

#include "gtest/gtest.h"
#include "unipool/platform/memory.h"

namespace unipool {
namespace {

class ViewMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto memory = platform::CreateSharedMemory(64 * page_);
    ASSERT_TRUE(memory.ok()) << memory.status();
    memory_ = std::move(*memory);
    auto slab = platform::MapShared(memory_.fd.get(), 0, memory_.size);
    ASSERT_TRUE(slab.ok()) << slab.status();
    slab_ = *slab;
  }
  void TearDown() override { platform::Unmap(slab_, memory_.size); }

  const uint64_t page_ = platform::PageSize();
  platform::SharedMemory memory_;
  uint8_t* slab_ = nullptr;
};

TEST_F(ViewMapsTest, ReusesAReleasedMappingOfTheSameRange) {
  ViewMaps maps(memory_.fd.get());
  auto first = maps.Take(2 * page_, 2 * page_);
  ASSERT_TRUE(first.ok()) << first.status();
  maps.Give(*first, 2 * page_, 2 * page_);
  EXPECT_EQ(maps.idle_maps(), 1u);
  EXPECT_EQ(maps.idle_bytes(), 2 * page_);

  // Another range maps anew; the same range gets the idle mapping back.
  auto other = maps.Take(4 * page_, 2 * page_);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(maps.reused(), 0u);
  auto again = maps.Take(2 * page_, 2 * page_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(maps.reused(), 1u);
  EXPECT_EQ(maps.idle_maps(), 0u);
  maps.Give(*again, 2 * page_, 2 * page_);
  maps.Give(*other, 4 * page_, 2 * page_);
}

TEST_F(ViewMapsTest, AnIdleMappingShowsWhatTheSlabHoldsNow) {
  ViewMaps maps(memory_.fd.get());
  std::memset(slab_ + page_, 'a', page_);
  auto map = maps.Take(page_, page_);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ((*map)[0], 'a');
  maps.Give(*map, page_, page_);
  std::memset(slab_ + page_, 'b', page_);  // the node stores another object there
  auto again = maps.Take(page_, page_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0], 'b');
  EXPECT_EQ((*again)[page_ - 1], 'b');
  maps.Give(*again, page_, page_);
}

TEST_F(ViewMapsTest, KeepsTheMostRecentWithinItsLimits) {
  ViewMaps maps(memory_.fd.get(), {.max_idle_bytes = 3 * page_, .max_idle_maps = 2});
  const uint8_t* taken[4];
  for (uint64_t i = 0; i < 4; ++i) {
    auto map = maps.Take(i * page_, page_);
    ASSERT_TRUE(map.ok());
    taken[i] = *map;
  }
  for (uint64_t i = 0; i < 4; ++i) maps.Give(taken[i], i * page_, page_);
  EXPECT_EQ(maps.idle_maps(), 2u);  // the map limit binds first
  // The two given last are kept: their ranges are reused, the others not.
  for (uint64_t i : {2, 3}) {
    auto map = maps.Take(i * page_, page_);
    ASSERT_TRUE(map.ok());
    EXPECT_EQ(*map, taken[i]);
    maps.Give(*map, i * page_, page_);
  }
  EXPECT_EQ(maps.reused(), 2u);
  auto big = maps.Take(8 * page_, 2 * page_);
  ASSERT_TRUE(big.ok());
  maps.Give(*big, 8 * page_, 2 * page_);  // 4 pages idle > 3: the oldest goes
  EXPECT_EQ(maps.idle_maps(), 2u);
  EXPECT_EQ(maps.idle_bytes(), 3 * page_);
}

TEST_F(ViewMapsTest, SeveralIdleMappingsOfOneRange) {
  ViewMaps maps(memory_.fd.get());
  auto a = maps.Take(0, page_);
  auto b = maps.Take(0, page_);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // two views of one range at once: two mappings
  maps.Give(*a, 0, page_);
  maps.Give(*b, 0, page_);
  EXPECT_EQ(maps.idle_maps(), 2u);
  auto c = maps.Take(0, page_);
  auto d = maps.Take(0, page_);
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_EQ(maps.reused(), 2u);
  EXPECT_NE(*c, *d);
  maps.Give(*c, 0, page_);
  maps.Give(*d, 0, page_);
}

TEST_F(ViewMapsTest, ARangeOutsideTheSlabFails) {
  ViewMaps maps(memory_.fd.get());
  EXPECT_FALSE(maps.Take(memory_.size, page_).ok());
}

}  // namespace
}  // namespace unipool
