// The directory's in-memory object map: committed objects by key, each with
// its in-memory lifecycle state (read lease, pin, recency), kept in three
// recency lists (evictable and pinned objects in memory, and objects on
// flash only) so that eviction finds the least recently used object in
// memory in O(1) and a touch costs O(1).
//
// Thread safety: not thread-safe; the directory guards it with its mutex
// (ObjectEntry's lease, alone, may be extended under a shared lock).
#ifndef UNIPOOL_DIRECTORY_OBJECT_TABLE_H_
#define UNIPOOL_DIRECTORY_OBJECT_TABLE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/node_hash_map.h"
#include "unipool/common/string_map.h"
#include "unipool/directory/records.h"

namespace unipool {

// A committed object and its lifecycle state. The durable part is the
// ObjectRecord base; the rest lives in memory only.
struct ObjectEntry : ObjectRecord {
  explicit ObjectEntry(const ObjectRecord& record) : ObjectRecord(record) {}
  ObjectEntry(const ObjectEntry&) = delete;
  ObjectEntry& operator=(const ObjectEntry&) = delete;

  // Until then the object is not evicted and, once removed, its memory is
  // not reused: a reader may be reading it without asking the directory.
  // Lookups extend it under the directory's shared lock (hence atomic);
  // everything that acts on it holds the exclusive lock.
  int64_t lease_until_unix_ms() const { return lease_until_.load(std::memory_order_relaxed); }
  void set_lease_until_unix_ms(int64_t until) {
    lease_until_.store(until, std::memory_order_relaxed);
  }
  // Extends the lease to `until` unless it lasts longer already. Safe for
  // concurrent callers.
  void ExtendLease(int64_t until) {
    int64_t seen = lease_until_.load(std::memory_order_relaxed);
    while (seen < until &&
           !lease_until_.compare_exchange_weak(seen, until, std::memory_order_relaxed)) {
    }
  }
  // Last lookup or commit; orders the recency lists.
  int64_t last_access_unix_ms = 0;
  // Until then the write capabilities of the put that made it still work
  // (a pool with a key): once evicted, removed, replaced or moved, its
  // memory is held until this passes. 0 once every node revoked them
  // (Directory::FinishRevocations). In memory only (a restart holds
  // everything for one put timeout).
  int64_t write_until_unix_ms = 0;
  // When its memory may be reused once it is released.
  int64_t hold_until_unix_ms() const {
    return std::max(lease_until_unix_ms(), write_until_unix_ms);
  }
  // Covered by a key or prefix pin: never evicted. Change only through
  // ObjectTable::SetPinned, which moves the entry between lists.
  bool pinned() const { return pinned_; }
  const std::string& key() const { return *key_; }

 private:
  friend class ObjectTable;
  std::atomic<int64_t> lease_until_{0};
  bool pinned_ = false;
  uint8_t list_ = 0;                  // which of ObjectTable's lists it is in (set by Link)
  const std::string* key_ = nullptr;  // the map's key (node_hash_map: stable)
  ObjectEntry* colder_ = nullptr;
  ObjectEntry* hotter_ = nullptr;
};

class ObjectTable {
 public:
  using Map = absl::node_hash_map<std::string, ObjectEntry, StringViewHash, StringViewEq>;
  using iterator = Map::iterator;
  using const_iterator = Map::const_iterator;

  ObjectTable() = default;
  ObjectTable(const ObjectTable&) = delete;
  ObjectTable& operator=(const ObjectTable&) = delete;

  size_t size() const { return map_.size(); }
  iterator begin() { return map_.begin(); }
  iterator end() { return map_.end(); }
  const_iterator begin() const { return map_.begin(); }
  const_iterator end() const { return map_.end(); }
  iterator find(std::string_view key) { return map_.find(key); }
  const_iterator find(std::string_view key) const { return map_.find(key); }
  bool contains(std::string_view key) const { return map_.contains(key); }

  // Adds an object as the hottest of its list. REQUIRES: the key is absent.
  ObjectEntry& Insert(std::string_view key, const ObjectRecord& record, bool pinned,
                      int64_t now_unix_ms);
  void Erase(iterator it);
  // Marks a use: the entry becomes the hottest of its list.
  void Touch(ObjectEntry& entry, int64_t now_unix_ms);
  void SetPinned(ObjectEntry& entry, bool pinned);
  // Call after the entry's copies changed between none (on flash only) and
  // some (in memory): moves it to the right list, as its hottest.
  void Relist(ObjectEntry& entry);

  // Recency order, coldest first: evictable objects, then (separately)
  // pinned ones. nullptr ends a walk.
  ObjectEntry* ColdestEvictable() const { return lists_[0].coldest; }
  ObjectEntry* HottestEvictable() const { return lists_[0].hottest; }
  ObjectEntry* HottestPinned() const { return lists_[1].hottest; }
  // Objects with no copy in memory (on flash only), never eviction victims.
  ObjectEntry* ColdestFlashOnly() const { return lists_[2].coldest; }
  static ObjectEntry* Hotter(const ObjectEntry& entry) { return entry.hotter_; }
  static ObjectEntry* Colder(const ObjectEntry& entry) { return entry.colder_; }

 private:
  struct List {
    ObjectEntry* coldest = nullptr;
    ObjectEntry* hottest = nullptr;
  };
  List& ListOf(const ObjectEntry& entry) { return lists_[entry.list_]; }
  void Link(ObjectEntry& entry);  // as the hottest of its list
  void Unlink(ObjectEntry& entry);

  Map map_;
  List lists_[3];  // [0] evictable, [1] pinned, [2] on flash only
};

}  // namespace unipool

#endif  // UNIPOOL_DIRECTORY_OBJECT_TABLE_H_
