// A zero-copy, read-only view of one object's bytes in the slab of a node on
// this machine (Client::GetView, Client::GetPrefixViews): an engine reads its
// KV pages where the pool keeps them (on a Mac, wraps them as MLX or Metal
// buffers) with no copy.
//
// Guarantees, from the moment the call returns the view until it is
// destroyed:
//   - the bytes are the committed object's: their checksum was verified
//     before the view was handed out (a view never shows a torn or reused
//     page; later damage to the node's memory is not checked again);
//   - they are read-only: the mapping has no write permission (a write
//     through it is SIGSEGV);
//   - they do not change, even when the key is removed, replaced or
//     evicted: the client renews the key's read lease while the view lives
//     (a lookup every third of the lease), and when a renewal finds the key
//     gone it moves the bytes into private memory at the same address
//     before the directory's lease on the old memory ends (detached());
//   - when the node's process ends, the bytes stay readable (the mapping
//     holds its memory) and stale() turns true; a get of the key then misses.
// The bytes held by a client's views count against ClientOptions::
// max_view_bytes; destroying a view gives them back and ends its renewals.
//
// Thread safety: a PageView may be read from any thread; it is movable, not
// copyable. REQUIRES: the Client that made it outlives it.
#ifndef UNIPOOL_VIEW_H_
#define UNIPOOL_VIEW_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace unipool {

class ViewHold;  // client/view_registry.h

class PageView {
 public:
  PageView() = default;
  PageView(PageView&&) noexcept = default;
  PageView& operator=(PageView&&) noexcept = default;

  // The object's bytes (empty for a default-constructed view).
  std::span<const uint8_t> bytes() const;
  const uint8_t* data() const { return bytes().data(); }
  size_t size() const { return bytes().size(); }
  std::string_view key() const;
  // True once the node holding the bytes has ended.
  bool stale() const;
  // True once the key was removed, replaced or evicted while this view
  // lived: the bytes are now in the client's private memory.
  bool detached() const;

 private:
  friend class Client;
  explicit PageView(std::shared_ptr<ViewHold> hold) : hold_(std::move(hold)) {}
  std::shared_ptr<ViewHold> hold_;
};

}  // namespace unipool

#endif  // UNIPOOL_VIEW_H_
