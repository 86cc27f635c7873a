#include "unipool/shm/shm_node_io.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "shm_protocol.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"
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
  uint8_t* base = nullptr;  // the mmap
  uint64_t size = 0;        // slab bytes
  uint64_t slab_id = 0;

  ~Mapping() {
    if (base != nullptr) munmap(base, size);
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
    return fallback_->Write(node_address, ops);
  }
  for (const WriteOp& op : ops) {
    ASSIGN_OR_RETURN(uint8_t * to, m->At(op.offset, op.bytes.size()));
    CopyPage(to, op.bytes.data(), op.bytes.size());
  }
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
  for (const ReadOp& op : ops) {
    ASSIGN_OR_RETURN(const uint8_t* from, m->At(op.offset, op.into.size()));
    bool ok = CopyAndCheck(op.into, from, op.checksum);
    if (op.verified != nullptr) *op.verified = ok;
  }
  shm_requests_.fetch_add(1, std::memory_order_relaxed);
  last_was_shm_.store(true, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ShmNodeIo::Mapping>> ShmNodeIo::Map(const std::string& address) {
  Fd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid())
    return absl::InternalError(absl::StrFormat("unix socket: %s", std::strerror(errno)));
  std::string name = ShmSocketName(address);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t n = std::min(name.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path + 1, name.data(), n);
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  // Nobody listening (another machine's node, or --shm=off) fails at once.
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0) {
    return absl::UnavailableError(
        absl::StrFormat("no slab share @%s: %s", name, std::strerror(errno)));
  }
  ShmRequest request;
  if (send(sock.get(), &request, sizeof request, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof request)) {
    return absl::UnavailableError(
        absl::StrFormat("slab share @%s: %s", name, std::strerror(errno)));
  }
  pollfd p{sock.get(), POLLIN, 0};
  if (poll(&p, 1, kHandshakeTimeoutMs) != 1) {
    return absl::UnavailableError(absl::StrFormat("slab share @%s did not answer", name));
  }
  ShmReply reply;
  iovec iov{&reply, sizeof reply};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got = recvmsg(sock.get(), &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  Fd slab;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      slab = Fd(fd);
    }
  }
  if (got != static_cast<ssize_t>(sizeof reply) || reply.magic != kShmMagic) {
    return absl::UnavailableError(absl::StrFormat("slab share @%s: bad reply", name));
  }
  if (reply.code != 0) {
    reply.message[sizeof reply.message - 1] = 0;
    return absl::Status(static_cast<absl::StatusCode>(reply.code), reply.message);
  }
  if (!slab.valid() || reply.slab_size == 0) {
    return absl::UnavailableError(absl::StrFormat("slab share @%s sent no slab", name));
  }
  // Not MAP_POPULATE: for a memfd that would allocate the whole slab. Pages
  // fault in on first use (once per page per client).
  void* base = mmap(nullptr, reply.slab_size, PROT_READ | PROT_WRITE, MAP_SHARED, slab.get(),
                    static_cast<off_t>(reply.map_offset));
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot map the slab of %s: %s", address, std::strerror(errno)));
  }
  madvise(base, reply.slab_size, MADV_HUGEPAGE);  // best effort
  auto mapping = std::make_unique<Mapping>();
  mapping->socket = std::move(sock);
  mapping->base = static_cast<uint8_t*>(base);
  mapping->size = reply.slab_size;
  mapping->slab_id = reply.slab_id;
  return mapping;
}

}  // namespace unipool
