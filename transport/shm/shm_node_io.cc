#include "unipool/shm/shm_node_io.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "shm_protocol.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"
#include "unipool/platform/memory.h"
#include "unipool/platform/net.h"
#include "unipool/shm/shm_copy.h"

namespace unipool {

namespace {

// The handshake is local and tiny; a node that does not answer within this
// is treated as not sharing.
constexpr int kHandshakeTimeoutMs = 1000;

}  // namespace

// One node's slab, mapped here, and the socket whose hang-up says the node
// is gone. Shared by the copies in flight; unmapped when the last one ends.
struct ShmNodeIo::Mapping {
  Fd socket;
  Fd slab;                          // kept for views, which map their own ranges
  std::unique_ptr<ViewMaps> views;  // views' released mappings (before `slab` in ~)
  uint8_t* base = nullptr;          // slab byte 0, map_offset bytes into the mapping
  uint64_t size = 0;                // slab bytes
  uint64_t map_offset = 0;          // mapped before base: the fd's offset rounded down to a page
  uint64_t slab_id = 0;
  uint64_t fd_offset = 0;  // where slab byte 0 is in the fd
  // One bit per kWritableChunk of the slab, set once this process has
  // faulted the chunk in for writing, so that later writes skip the call.
  std::unique_ptr<std::atomic<uint64_t>[]> writable;

  ~Mapping() {
    if (base != nullptr) platform::Unmap(base - map_offset, size + map_offset);
  }
  // False once the node closed its end (it exited, or stopped sharing).
  bool alive() const {
    pollfd p{socket.get(), POLLIN, 0};
    return poll(&p, 1, 0) == 0;
  }
  absl::StatusOr<uint8_t*> At(uint64_t offset, uint64_t length) const {
    if (offset > size || length > size - offset) {
      return absl::OutOfRangeError(
          absl::StrFormat("range [%u, +%u) is outside the slab of %u bytes", offset, length, size));
    }
    return base + offset;
  }
  // Faults the chunks around [offset, +length) (in the slab) in for writing
  // unless done before: one system call per chunk instead of a page fault
  // per page inside the copy. REQUIRES: the range is inside the slab.
  void EnsureWritable(uint64_t offset, uint64_t length) {
    if (length == 0) return;
    for (uint64_t c = offset / kWritableChunk; c <= (offset + length - 1) / kWritableChunk; ++c) {
      std::atomic<uint64_t>& word = writable[c / 64];
      const uint64_t bit = 1ull << (c % 64);
      if ((word.load(std::memory_order_relaxed) & bit) != 0) continue;
      uint64_t start = c * kWritableChunk;
      platform::PrefaultForWriting(base + start, std::min(kWritableChunk, size - start));
      word.fetch_or(bit, std::memory_order_relaxed);
    }
  }
};

ShmNodeIo::~ShmNodeIo() = default;

std::string_view ShmNodeIo::name() const {
  return last_was_shm_.load(std::memory_order_relaxed) ? "shm" : fallback_->name();
}

size_t ShmNodeIo::mapped_nodes() const {
  absl::MutexLock lock(&mu_);
  return mapped_.size();
}

std::shared_ptr<ShmNodeIo::Mapping> ShmNodeIo::MappingFor(const std::string& address) {
  absl::MutexLock lock(&mu_);
  if (auto it = mapped_.find(address); it != mapped_.end()) {
    if (it->second->alive()) return it->second;
    mapped_.erase(it);  // the node went away: try its successor at once
  } else if (auto no = unmappable_.find(address); no != unmappable_.end()) {
    if (absl::Now() < no->second) return nullptr;
    unmappable_.erase(no);
  }
  auto mapped = Map(address);
  if (!mapped.ok()) {
    unmappable_[address] = absl::Now() + kRetryAfter;
    return nullptr;
  }
  std::shared_ptr<Mapping> mapping = std::move(*mapped);
  mapped_[address] = mapping;
  return mapping;
}

absl::Status ShmNodeIo::Write(const std::string& node_address, std::span<const WriteOp> ops) {
  std::shared_ptr<Mapping> m = MappingFor(node_address);
  if (m == nullptr) {
    fallback_requests_.fetch_add(1, std::memory_order_relaxed);
    last_was_shm_.store(false, std::memory_order_relaxed);
    if (fallback_->HashesWhileWriting()) return fallback_->Write(node_address, ops);
    return fallback_->Write(node_address, HashedFirst(ops));
  }
  std::vector<uint8_t*> to(ops.size());
  uint64_t bytes = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSIGN_OR_RETURN(to[i], m->At(ops[i].offset, ops[i].bytes.size()));
    bytes += ops[i].bytes.size();
  }
  copy_threads_.ForEach(ops.size(), bytes, [&](size_t i) {
    const WriteOp& op = ops[i];
    m->EnsureWritable(op.offset, op.bytes.size());
    if (op.hashed != nullptr) {
      *op.hashed = CopyAndHash(to[i], op.bytes.data(), op.bytes.size());
    } else {
      CopyPage(to[i], op.bytes.data(), op.bytes.size());
    }
  });
  shm_requests_.fetch_add(1, std::memory_order_relaxed);
  last_was_shm_.store(true, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status ShmNodeIo::Read(const std::string& node_address, std::span<const ReadOp> ops) {
  std::shared_ptr<Mapping> m = MappingFor(node_address);
  if (m == nullptr) {
    fallback_requests_.fetch_add(1, std::memory_order_relaxed);
    last_was_shm_.store(false, std::memory_order_relaxed);
    return fallback_->Read(node_address, ops);
  }
  std::vector<const uint8_t*> from(ops.size());
  uint64_t bytes = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSIGN_OR_RETURN(from[i], m->At(ops[i].offset, ops[i].into.size()));
    bytes += ops[i].into.size();
  }
  copy_threads_.ForEach(ops.size(), bytes, [&](size_t i) {
    const ReadOp& op = ops[i];
    bool ok = CopyAndCheck(op.into, from[i], op.checksum);
    if (op.verified != nullptr) *op.verified = ok;
  });
  shm_requests_.fetch_add(1, std::memory_order_relaxed);
  last_was_shm_.store(true, std::memory_order_relaxed);
  return absl::OkStatus();
}

void ShmNodeIo::PrepareWrite(const std::string& node_address, uint64_t offset, uint64_t length) {
  std::shared_ptr<Mapping> m;
  {
    absl::MutexLock lock(&mu_);
    auto it = mapped_.find(node_address);
    if (it == mapped_.end()) return;  // not mapped (yet): nothing to fault in
    m = it->second;
  }
  if (length == 0 || !m->At(offset, length).ok()) return;
  const Mapping* mapping = m.get();
  write_ahead_.Add(length, std::move(m), [mapping, offset, length] {
    const_cast<Mapping*>(mapping)->EnsureWritable(offset, length);
    // The first access from user space may cost more than the kernel's
    // mapping (a VM's shadow page tables: half of each fault here); a read
    // takes that too, and the put's copy finds the pages ready.
    MapForWriting(mapping->base + offset, length);
  });
}

uint64_t ShmNodeIo::prepared_writes() const { return write_ahead_.done(); }

SlabView::~SlabView() {
  // A detached view's pages are private memory now, no longer the slab's.
  if (detached_ || maps_ == nullptr) {
    platform::Unmap(const_cast<uint8_t*>(map_), map_length_);
  } else {
    maps_->Give(map_, map_at_, map_length_);
  }
}

bool SlabView::node_alive() const { return alive_(node_.get()); }

absl::Status SlabView::Detach() {
  if (detached_) return absl::OkStatus();
  RETURN_IF_ERROR(platform::KeepPrivateCopy(map_, map_length_));
  detached_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SlabView>> ShmNodeIo::MapView(const std::string& node_address,
                                                             uint64_t offset, uint64_t length) {
  std::shared_ptr<Mapping> m = MappingFor(node_address);
  if (m == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "node %s does not share its slab with this process (another machine, or --shm=off)",
        node_address));
  }
  RETURN_IF_ERROR(m->At(offset, length).status());
  // Whole pages of the fd around the object.
  const uint64_t page = platform::PageSize();
  uint64_t at = m->fd_offset + offset;
  uint64_t lead = at % page;
  uint64_t map_length = platform::RoundUp(lead + length, page);
  ASSIGN_OR_RETURN(const uint8_t* map, m->views->Take(at - lead, map_length));
  auto view = std::unique_ptr<SlabView>(new SlabView);
  view->maps_ = m->views.get();  // lives as long as view->node_ below
  view->map_at_ = at - lead;
  view->map_ = map;
  view->map_length_ = map_length;
  view->data_ = map + lead;
  view->length_ = length;
  view->alive_ = [](const void* node) { return static_cast<const Mapping*>(node)->alive(); };
  view->node_ = std::move(m);
  return view;
}

absl::StatusOr<std::unique_ptr<ShmNodeIo::Mapping>> ShmNodeIo::Map(const std::string& address) {
  std::string name = ShmSocketName(address);
  // Nobody listening (another machine's node, or --shm=off) fails at once.
  ASSIGN_OR_RETURN(Fd sock, platform::ConnectLocal(name));
  std::string where = platform::LocalDisplayName(name);
  ShmRequest request;
  if (send(sock.get(), &request, sizeof request, platform::SendFlags()) !=
      static_cast<ssize_t>(sizeof request)) {
    return absl::UnavailableError(
        absl::StrFormat("slab share %s: %s", where, std::strerror(errno)));
  }
  pollfd p{sock.get(), POLLIN, 0};
  if (poll(&p, 1, kHandshakeTimeoutMs) != 1) {
    return absl::UnavailableError(absl::StrFormat("slab share %s did not answer", where));
  }
  ShmReply reply;
  Fd slab;
  ssize_t got = platform::ReceiveWithFd(sock.get(), &reply, sizeof reply, &slab);
  if (got != static_cast<ssize_t>(sizeof reply) || reply.magic != kShmMagic) {
    return absl::UnavailableError(absl::StrFormat("slab share %s: bad reply", where));
  }
  if (reply.code != 0) {
    reply.message[sizeof reply.message - 1] = 0;
    return absl::Status(static_cast<absl::StatusCode>(reply.code), reply.message);
  }
  if (!slab.valid() || reply.slab_size == 0) {
    return absl::UnavailableError(absl::StrFormat("slab share %s sent no slab", where));
  }
  // The node's page size may differ from the announced offset's alignment
  // on another build: map from the page boundary below it. Not populated
  // (a large slab would take seconds per GiB): pages are mapped on first
  // use, and Write maps the chunks of a range before copying into it
  // (EnsureWritable), ahead of time for reservations (PrepareWrite). MapShared
  // refuses memory shorter than announced (touching past its end would be
  // SIGBUS).
  uint64_t lead = reply.map_offset % platform::PageSize();
  auto base = platform::MapShared(slab.get(), reply.map_offset - lead, reply.slab_size + lead);
  if (!base.ok()) {
    return absl::Status(base.status().code(), absl::StrFormat("cannot map the slab of %s: %s",
                                                              address, base.status().message()));
  }
  platform::AdviseHugePages(*base, reply.slab_size + lead);
  auto mapping = std::make_unique<Mapping>();
  mapping->socket = std::move(sock);
  mapping->slab = std::move(slab);
  mapping->views = std::make_unique<ViewMaps>(mapping->slab.get());
  mapping->base = *base + lead;
  mapping->size = reply.slab_size;
  mapping->map_offset = lead;
  mapping->slab_id = reply.slab_id;
  mapping->fd_offset = reply.map_offset;
  uint64_t chunks = (reply.slab_size + kWritableChunk - 1) / kWritableChunk;
  mapping->writable = std::make_unique<std::atomic<uint64_t>[]>((chunks + 63) / 64);
  return mapping;
}

}  // namespace unipool
