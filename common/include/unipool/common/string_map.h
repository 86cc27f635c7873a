// Hash containers keyed by std::string that can be probed with a
// std::string_view without a copy. Debian's Abseil is built with its own
// absl::string_view (not std::string_view), so its default transparent
// string hashing does not accept std::string_view; these functors do.
#ifndef UNIPOOL_COMMON_STRING_MAP_H_
#define UNIPOOL_COMMON_STRING_MAP_H_

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace unipool {

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};

struct StringViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

template <typename Value>
using StringMap = absl::flat_hash_map<std::string, Value, StringViewHash, StringViewEq>;

// A set of views; the viewed bytes must outlive the set.
using StringViewSet = absl::flat_hash_set<std::string_view, StringViewHash, StringViewEq>;

}  // namespace unipool

#endif  // UNIPOOL_COMMON_STRING_MAP_H_
