// The pool's pins: keys pinned one by one and prefixes pinning every key that
// starts with them. A pinned object is never evicted. The set only answers
// "is this key pinned?"; the directory persists pins and marks its objects.
//
// Thread safety: not thread-safe; the directory guards it with its mutex.
#ifndef UNIPOOL_DIRECTORY_PIN_SET_H_
#define UNIPOOL_DIRECTORY_PIN_SET_H_

#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace unipool {

class PinSet {
 public:
  // True when `key` has a key pin or starts with a pinned prefix.
  bool Covers(std::string_view key) const;
  // True when this exact pin (key, or prefix) exists.
  bool Has(std::string_view key, bool prefix) const;
  // Returns false when the pin was there already (or, for Remove, absent).
  bool Add(std::string_view key, bool prefix);
  bool Remove(std::string_view key, bool prefix);
  size_t size() const { return keys_.size() + prefixes_.size(); }

 private:
  std::set<std::string, std::less<>> keys_;
  // Prefix pins are few (an operator's); a key is matched against each.
  std::set<std::string, std::less<>> prefixes_;
};

// Whether `key` starts with `prefix`.
inline bool KeyStartsWith(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_PIN_SET_H_
