#include "unipool/directory/pin_set.h"

namespace unipool {

bool PinSet::Covers(std::string_view key) const {
  if (keys_.contains(key)) return true;
  for (const std::string& prefix : prefixes_) {
    if (KeyStartsWith(key, prefix)) return true;
  }
  return false;
}

bool PinSet::Has(std::string_view key, bool prefix) const {
  return (prefix ? prefixes_ : keys_).contains(key);
}

bool PinSet::Add(std::string_view key, bool prefix) {
  return (prefix ? prefixes_ : keys_).insert(std::string(key)).second;
}

bool PinSet::Remove(std::string_view key, bool prefix) {
  auto& pins = prefix ? prefixes_ : keys_;
  auto it = pins.find(key);
  if (it == pins.end()) return false;
  pins.erase(it);
  return true;
}

}  // namespace unipool
