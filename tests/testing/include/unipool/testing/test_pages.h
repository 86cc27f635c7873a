// Deterministic page contents for tests: the bytes of a page are a function
// of its key and a seed, so a test can check every byte it reads back
// without keeping a copy of everything it wrote.
#ifndef UNIPOOL_TESTING_TEST_PAGES_H_
#define UNIPOOL_TESTING_TEST_PAGES_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace unipool::testing {

inline uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t HashKey(std::string_view key, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : key) h = Mix(h ^ c);
  return h;
}

inline std::vector<uint8_t> PageBytes(std::string_view key, size_t size, uint64_t seed = 0) {
  std::vector<uint8_t> bytes(size);
  uint64_t state = HashKey(key, seed);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    state = Mix(state);
    std::memcpy(&bytes[i], &state, 8);
  }
  state = Mix(state);
  for (; i < size; ++i) bytes[i] = static_cast<uint8_t>(state >> (8 * (i % 8)));
  return bytes;
}

// Log-uniform sizes between lo and hi, 4 KiB-aligned half of the time
// (engines use aligned pages; tensors often are not).
inline size_t PageSize(uint64_t index, size_t lo, size_t hi) {
  uint64_t r = Mix(index * 7919 + 17);
  double f = static_cast<double>(r % 1'000'000) / 1'000'000.0;
  double size = static_cast<double>(lo) * std::pow(static_cast<double>(hi) / lo, f);
  size_t s = static_cast<size_t>(size);
  if (r & (1ull << 40)) s = (s + 4095) / 4096 * 4096;
  return std::max(lo, std::min(hi, s));
}

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_TEST_PAGES_H_
