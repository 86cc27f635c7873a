#include "unipool/directory/object_table.h"

#include <algorithm>
#include <cassert>

namespace unipool {

ObjectEntry& ObjectTable::Insert(std::string_view key, const ObjectRecord& record, bool pinned,
                                 int64_t now_unix_ms) {
  auto [it, inserted] = map_.try_emplace(std::string(key), record);
  assert(inserted);
  (void)inserted;
  ObjectEntry& entry = it->second;
  entry.key_ = &it->first;
  entry.pinned_ = pinned;
  entry.last_access_unix_ms = now_unix_ms;
  Link(entry);
  return entry;
}

void ObjectTable::Erase(iterator it) {
  Unlink(it->second);
  map_.erase(it);
}

void ObjectTable::Touch(ObjectEntry& entry, int64_t now_unix_ms) {
  entry.last_access_unix_ms = std::max(entry.last_access_unix_ms, now_unix_ms);
  if (ListOf(entry).hottest == &entry) return;
  Unlink(entry);
  Link(entry);
}

void ObjectTable::SetPinned(ObjectEntry& entry, bool pinned) {
  if (entry.pinned_ == pinned) return;
  Unlink(entry);
  entry.pinned_ = pinned;
  Link(entry);
}

void ObjectTable::Relist(ObjectEntry& entry) {
  Unlink(entry);
  Link(entry);
}

void ObjectTable::Link(ObjectEntry& entry) {
  entry.list_ = entry.copies.empty() ? 2 : entry.pinned_ ? 1 : 0;
  List& list = ListOf(entry);
  entry.hotter_ = nullptr;
  entry.colder_ = list.hottest;
  if (list.hottest != nullptr) list.hottest->hotter_ = &entry;
  list.hottest = &entry;
  if (list.coldest == nullptr) list.coldest = &entry;
}

void ObjectTable::Unlink(ObjectEntry& entry) {
  List& list = ListOf(entry);
  if (entry.hotter_ != nullptr) {
    entry.hotter_->colder_ = entry.colder_;
  } else {
    list.hottest = entry.colder_;
  }
  if (entry.colder_ != nullptr) {
    entry.colder_->hotter_ = entry.hotter_;
  } else {
    list.coldest = entry.hotter_;
  }
  entry.hotter_ = entry.colder_ = nullptr;
}

}  // namespace unipool
