#include "unipool/directory/records.h"

#include <algorithm>

#include "absl/status/status.h"
#include "unipool/common/auth.h"

namespace unipool {
namespace {

// Every record starts with a format byte so the layout can evolve.
constexpr uint8_t kObjectFormat = 1;
constexpr uint8_t kObjectWithReplicasFormat = 2;  // format 1 + replica list
// Any number of memory copies (0 for an object on flash only), then the
// nodes whose flash holds it. Written only for objects with a flash copy.
constexpr uint8_t kObjectWithFlashFormat = 3;
// More flash copies than this in a record is corruption.
constexpr uint64_t kMaxFlashCopiesInRecord = 255;
constexpr uint8_t kPendingFormat = 1;
constexpr uint8_t kPendingWithReplicasFormat = 2;  // format 1 + replica list
// Format 2 (replica list always) + the holder's client id and owner: a
// PutStart reservation stays its client's across a directory restart.
constexpr uint8_t kPendingWithHolderFormat = 3;
// Every reservation from now on: a random put id and, apart from it, the
// version the object gets; the replica list and the holder (0: none) always.
// In formats 1-3 the put id was the version.
constexpr uint8_t kPendingWithVersionFormat = 4;
constexpr uint8_t kNodeFormat = 1;
constexpr uint8_t kNodeWithDrainingFormat = 2;  // format 1 + draining byte
// Draining byte always, then transports, identity digest, last seen.
constexpr uint8_t kNodeWithIdentityFormat = 3;
constexpr uint8_t kPinFormat = 1;
constexpr uint8_t kHeldFormat = 1;
// More replicas than this in a record is corruption.
constexpr uint64_t kMaxReplicasInRecord = 255;

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Bytes(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(8);
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u;
    if (!U64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t u;
    if (!U64(&u) || u > UINT32_MAX) return false;
    *v = static_cast<uint32_t>(u);
    return true;
  }
  bool Bytes(std::string* s) {
    uint64_t n;
    if (!U64(&n) || n > in_.size()) return false;
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool Format(uint8_t expected) {
    uint8_t f;
    return U8(&f) && f == expected;
  }
  // Reads the format byte; true when it is one of `a` or `b`.
  bool FormatOf(uint8_t a, uint8_t b, uint8_t* f) { return U8(f) && (*f == a || *f == b); }
  bool FormatIn(uint8_t lowest, uint8_t highest, uint8_t* f) {
    return U8(f) && *f >= lowest && *f <= highest;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(std::string("corrupt ") + std::string(what) +
                             " record in the catalog");
}

// The first copy sits where records of format 1 had their only copy; the
// further ones follow as a counted list (format 2).
void WriteFirstCopy(Writer& w, const std::vector<ObjectCopy>& copies) {
  ObjectCopy first = copies.empty() ? ObjectCopy{} : copies[0];  // never empty in use
  w.U64(first.node_id);
  w.U64(first.offset);
}
// The copies after the first, as a count and (node, offset) pairs; nothing
// for one copy unless `always` (the count is then 0).
void WriteFurtherCopies(Writer& w, const std::vector<ObjectCopy>& copies, bool always = false) {
  if (copies.size() < 2 && !always) return;
  w.U64(copies.size() - 1);
  for (size_t i = 1; i < copies.size(); ++i) {
    w.U64(copies[i].node_id);
    w.U64(copies[i].offset);
  }
}
bool ReadFurtherCopies(Reader& r, std::vector<ObjectCopy>& copies, bool may_be_none = false) {
  uint64_t count = 0;
  if (!r.U64(&count) || (count == 0 && !may_be_none) || count > kMaxReplicasInRecord) {
    return false;
  }
  copies.resize(1 + count);
  for (size_t i = 1; i < copies.size(); ++i) {
    if (!r.U32(&copies[i].node_id) || !r.U64(&copies[i].offset)) return false;
  }
  return true;
}

// Format 3: memory copies (count, then node and offset each), length,
// version, checksum, created, flash copies (count, then node each).
std::string EncodeObjectWithFlash(const ObjectRecord& r) {
  Writer w;
  w.U8(kObjectWithFlashFormat);
  w.U64(r.copies.size());
  for (const ObjectCopy& copy : r.copies) {
    w.U64(copy.node_id);
    w.U64(copy.offset);
  }
  w.U64(r.length);
  w.U64(r.version);
  w.U64(r.checksum);
  w.U64(static_cast<uint64_t>(r.created_unix_ms));
  w.U64(r.flash.size());
  for (NodeId node : r.flash) w.U64(node);
  return w.Take();
}

absl::StatusOr<ObjectRecord> DecodeObjectWithFlash(Reader& r) {
  ObjectRecord o;
  uint64_t copies = 0;
  if (!r.U64(&copies) || copies > kMaxReplicasInRecord) return Corrupt("object");
  o.copies.resize(copies);
  for (ObjectCopy& copy : o.copies) {
    if (!r.U32(&copy.node_id) || !r.U64(&copy.offset)) return Corrupt("object");
  }
  uint64_t flash = 0;
  if (!r.U64(&o.length) || !r.U64(&o.version) || !r.U64(&o.checksum) ||
      !r.I64(&o.created_unix_ms) || !r.U64(&flash) || flash > kMaxFlashCopiesInRecord ||
      (flash == 0 && copies == 0)) {
    return Corrupt("object");
  }
  o.flash.resize(flash);
  for (NodeId& node : o.flash) {
    if (!r.U32(&node)) return Corrupt("object");
  }
  if (!r.done()) return Corrupt("object");
  return o;
}

}  // namespace

std::string EncodeObject(const ObjectRecord& r) {
  // Objects without a flash copy keep the formats older directories read.
  if (!r.flash.empty()) return EncodeObjectWithFlash(r);
  Writer w;
  // Objects with one copy keep the original format.
  w.U8(r.copies.size() < 2 ? kObjectFormat : kObjectWithReplicasFormat);
  WriteFirstCopy(w, r.copies);
  w.U64(r.length);
  w.U64(r.version);
  w.U64(r.checksum);
  w.U64(static_cast<uint64_t>(r.created_unix_ms));
  WriteFurtherCopies(w, r.copies);
  return w.Take();
}

absl::StatusOr<ObjectRecord> DecodeObject(std::string_view bytes) {
  Reader r(bytes);
  ObjectRecord o;
  o.copies.resize(1);
  uint8_t format = 0;
  if (!r.FormatIn(kObjectFormat, kObjectWithFlashFormat, &format)) return Corrupt("object");
  if (format == kObjectWithFlashFormat) return DecodeObjectWithFlash(r);
  if (!r.U32(&o.copies[0].node_id) || !r.U64(&o.copies[0].offset) || !r.U64(&o.length) ||
      !r.U64(&o.version) || !r.U64(&o.checksum) || !r.I64(&o.created_unix_ms)) {
    return Corrupt("object");
  }
  if (format == kObjectWithReplicasFormat && !ReadFurtherCopies(r, o.copies)) {
    return Corrupt("object");
  }
  if (!r.done()) return Corrupt("object");
  return o;
}

std::string EncodePendingPut(const PendingPut& p) {
  // Pre-handed reservations keep no holder: after a restart nobody commits
  // them (records.h).
  const bool bound = p.holder != 0 && !p.key.empty();
  Writer w;
  w.U8(kPendingWithVersionFormat);
  w.U64(p.put_id);
  w.Bytes(p.key);
  WriteFirstCopy(w, p.copies);
  w.U64(p.length);
  w.U8(p.replace ? 1 : 0);
  w.U64(static_cast<uint64_t>(p.deadline_unix_ms));
  WriteFurtherCopies(w, p.copies, /*always=*/true);
  w.U64(p.version);
  w.U64(bound ? p.holder : 0);
  w.Bytes(bound ? p.owner : "");
  return w.Take();
}

namespace {

// What follows the fixed fields of a format 3 or 4 record: the version
// (format 4) and the holder and owner. Formats 1-3 have no version of their
// own: their put id was it.
bool ReadPendingTail(Reader& r, uint8_t format, PendingPut& p) {
  p.version = p.put_id;
  if (format == kPendingWithVersionFormat && !r.U64(&p.version)) return false;
  if (format < kPendingWithHolderFormat) return true;
  if (!r.U64(&p.holder) || !r.Bytes(&p.owner)) return false;
  // A holder only with a key; format 3 was written only for a holder.
  if (p.holder != 0 && p.key.empty()) return false;
  return format == kPendingWithVersionFormat ? p.holder != 0 || p.owner.empty() : p.holder != 0;
}

}  // namespace

absl::StatusOr<PendingPut> DecodePendingPut(std::string_view bytes) {
  Reader r(bytes);
  PendingPut p;
  p.copies.resize(1);
  uint8_t replace = 0;
  uint8_t format = 0;
  if (!r.FormatIn(kPendingFormat, kPendingWithVersionFormat, &format) || !r.U64(&p.put_id) ||
      !r.Bytes(&p.key) || !r.U32(&p.copies[0].node_id) || !r.U64(&p.copies[0].offset) ||
      !r.U64(&p.length) || !r.U8(&replace) || !r.I64(&p.deadline_unix_ms)) {
    return Corrupt("pending put");
  }
  if (format >= kPendingWithReplicasFormat &&
      !ReadFurtherCopies(r, p.copies, /*may_be_none=*/format >= kPendingWithHolderFormat)) {
    return Corrupt("pending put");
  }
  if (!ReadPendingTail(r, format, p) || !r.done()) return Corrupt("pending put");
  p.replace = replace != 0;
  return p;
}

std::string NodeIdentityDigest(std::string_view identity) {
  if (identity.empty()) return "";
  Secret key{};
  std::copy_n(identity.begin(), std::min(identity.size(), key.size()), key.begin());
  // Longer identities: the rest goes into the message.
  std::string message = "unipool-node-identity-v1|";
  message.append(identity);
  Secret mac = Mac(key, message);
  return std::string(mac.begin(), mac.end());
}

std::string EncodeNode(const NodeRecord& n) {
  Writer w;
  w.U8(kNodeWithIdentityFormat);
  w.U64(n.node_id);
  w.Bytes(n.name);
  w.Bytes(n.host);
  w.Bytes(n.data_address);
  w.U64(n.slab_id);
  w.U64(n.slab_size);
  w.U8(n.draining ? 1 : 0);
  w.U64(n.transports.size());
  for (const auto& t : n.transports) w.Bytes(t);
  w.Bytes(n.identity_digest);
  w.U64(static_cast<uint64_t>(n.last_seen_unix_ms));
  return w.Take();
}

absl::StatusOr<NodeRecord> DecodeNode(std::string_view bytes) {
  Reader r(bytes);
  NodeRecord n;
  uint64_t transports = 0;
  uint8_t format = 0;
  if (!r.FormatIn(kNodeFormat, kNodeWithIdentityFormat, &format) || !r.U32(&n.node_id) ||
      !r.Bytes(&n.name) || !r.Bytes(&n.host) || !r.Bytes(&n.data_address) || !r.U64(&n.slab_id) ||
      !r.U64(&n.slab_size)) {
    return Corrupt("node");
  }
  if (format >= kNodeWithDrainingFormat) {
    uint8_t draining = 0;
    // Format 2 only exists for draining nodes; format 3 always has the byte.
    if (!r.U8(&draining) || draining > 1 || (format == kNodeWithDrainingFormat && !draining)) {
      return Corrupt("node");
    }
    n.draining = draining == 1;
  }
  // Older records may list up to 64 transports.
  if (!r.U64(&transports) || transports > 64) return Corrupt("node");
  n.transports.resize(transports);
  for (auto& t : n.transports) {
    if (!r.Bytes(&t)) return Corrupt("node");
  }
  if (format == kNodeWithIdentityFormat &&
      (!r.Bytes(&n.identity_digest) || !r.I64(&n.last_seen_unix_ms))) {
    return Corrupt("node");
  }
  if (!r.done()) return Corrupt("node");
  return n;
}

std::string EncodePin(const PinRecord& p) {
  Writer w;
  w.U8(kPinFormat);
  w.U8(p.prefix ? 1 : 0);
  w.Bytes(p.key);
  return w.Take();
}

absl::StatusOr<PinRecord> DecodePin(std::string_view bytes) {
  Reader r(bytes);
  PinRecord p;
  uint8_t prefix = 0;
  if (!r.Format(kPinFormat) || !r.U8(&prefix) || prefix > 1 || !r.Bytes(&p.key) || !r.done()) {
    return Corrupt("pin");
  }
  p.prefix = prefix == 1;
  return p;
}

std::string EncodeHeldExtent(const HeldExtent& h) {
  Writer w;
  w.U8(kHeldFormat);
  w.U64(h.id);
  w.U64(h.node_id);
  w.U64(h.offset);
  w.U64(h.length);
  w.U64(static_cast<uint64_t>(h.until_unix_ms));
  return w.Take();
}

absl::StatusOr<HeldExtent> DecodeHeldExtent(std::string_view bytes) {
  Reader r(bytes);
  HeldExtent h;
  if (!r.Format(kHeldFormat) || !r.U64(&h.id) || !r.U32(&h.node_id) || !r.U64(&h.offset) ||
      !r.U64(&h.length) || !r.I64(&h.until_unix_ms) || !r.done()) {
    return Corrupt("held extent");
  }
  return h;
}

}  // namespace unipool
