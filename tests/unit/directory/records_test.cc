// Encodings of the directory's durable records (unipool/directory/records.h):
// every record round-trips, and every damaged encoding (cut short, extended, wrong format byte,
// garbage) decodes to DataLoss, never to a crash or a record.
#include "unipool/directory/records.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace unipool {
namespace {

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

ObjectRecord SampleObject() {
  ObjectRecord r;
  r.copies = {{0xfedcba98, 0x0123456789abcdefull}};
  r.length = 80ull << 20;
  r.version = kMax64 - 1;
  r.checksum = 0x8000000000000001ull;
  r.created_unix_ms = -1234567;  // negative: the sign must survive
  return r;
}

PendingPut SamplePending() {
  PendingPut p;
  p.put_id = 0x9e3779b97f4a7c15ull;  // random, apart from the version
  p.version = 77;
  p.key = std::string(
      "page\0with\xff"
      "binary",
      16);
  p.copies = {{3, 4096 * 1000}};
  p.length = 5 << 20;
  p.replace = true;
  p.deadline_unix_ms = 1'764'064'879'123;
  return p;
}

NodeRecord SampleNode() {
  NodeRecord n;
  n.node_id = 12;
  n.name = "mac3:7301";
  n.host = "mac3.local";
  n.data_address = "169.254.10.3:7301";
  n.slab_id = 0xdeadbeefcafef00dull;
  n.slab_size = 512ull << 30;
  n.transports = {"tcp", "verbs-uc", ""};
  return n;
}

void ExpectEqual(const ObjectRecord& a, const ObjectRecord& b) {
  EXPECT_EQ(a.copies, b.copies);
  EXPECT_EQ(a.length, b.length);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.checksum, b.checksum);
  EXPECT_EQ(a.created_unix_ms, b.created_unix_ms);
}

void ExpectEqual(const PendingPut& a, const PendingPut& b) {
  EXPECT_EQ(a.put_id, b.put_id);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.holder, b.holder);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.copies, b.copies);
  EXPECT_EQ(a.length, b.length);
  EXPECT_EQ(a.replace, b.replace);
  EXPECT_EQ(a.deadline_unix_ms, b.deadline_unix_ms);
}

void ExpectEqual(const NodeRecord& a, const NodeRecord& b) {
  EXPECT_EQ(a.node_id, b.node_id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.data_address, b.data_address);
  EXPECT_EQ(a.slab_id, b.slab_id);
  EXPECT_EQ(a.slab_size, b.slab_size);
  EXPECT_EQ(a.transports, b.transports);
}

TEST(RecordsTest, ObjectRoundTrips) {
  for (const ObjectRecord& record : {ObjectRecord{.copies = {ObjectCopy{}}}, SampleObject()}) {
    auto decoded = DecodeObject(EncodeObject(record));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectEqual(*decoded, record);
  }
}

TEST(RecordsTest, PendingPutRoundTrips) {
  PendingPut empty_key = SamplePending();
  empty_key.key.clear();
  empty_key.replace = false;
  PendingPut long_key = SamplePending();
  long_key.key.assign(1024, 'k');
  PendingPut bound = SamplePending();
  bound.holder = 0xc11e47;
  bound.owner = "tenant-a/";
  PendingPut replicas = bound;
  replicas.copies.push_back({9, 1 << 20});
  const PendingPut zero{.copies = {ObjectCopy{}}};
  for (const PendingPut& record : {zero, SamplePending(), empty_key, long_key, bound, replicas}) {
    auto decoded = DecodePendingPut(EncodePendingPut(record));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectEqual(*decoded, record);
  }
}

// A pre-handed reservation's holder is not kept (records.h): after a
// restart nobody commits it.
TEST(RecordsTest, APrehandedReservationsHolderIsNotPersisted) {
  PendingPut prehanded = SamplePending();
  prehanded.key.clear();
  prehanded.holder = 0xc11e47;
  prehanded.owner = "tenant-a/";
  auto decoded = DecodePendingPut(EncodePendingPut(prehanded));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->put_id, prehanded.put_id);
  EXPECT_EQ(decoded->version, prehanded.version);
  EXPECT_EQ(decoded->holder, 0u);
  EXPECT_EQ(decoded->owner, "");
}

// Bytes of a pending put in format 1 (`holder` 0) or 3 (schema/FORMATS.md),
// written by hand as a directory before random put ids wrote them.
std::string OlderPendingPut(uint64_t put_id, std::string_view key, uint64_t holder,
                            std::string_view owner) {
  std::string out;
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  out.push_back(holder == 0 ? 1 : 3);
  u64(put_id);
  u64(key.size());
  out.append(key);
  u64(3);            // node id
  u64(4096 * 10);    // offset
  u64(5 << 20);      // length
  out.push_back(0);  // replace
  u64(1'764'064'879'123);
  if (holder != 0) {
    u64(0);  // no further copies
    u64(holder);
    u64(owner.size());
    out.append(owner);
  }
  return out;
}

// Formats 1 to 3 had no version of their own: their put id was it.
TEST(RecordsTest, OlderPendingPutsReadWithTheirPutIdAsVersion) {
  auto unbound = DecodePendingPut(OlderPendingPut(41, "k", 0, ""));
  ASSERT_TRUE(unbound.ok()) << unbound.status();
  EXPECT_EQ(unbound->put_id, 41u);
  EXPECT_EQ(unbound->version, 41u);
  EXPECT_EQ(unbound->holder, 0u);
  EXPECT_EQ(unbound->length, 5u << 20);
  auto bound = DecodePendingPut(OlderPendingPut(42, "k", 0xc11e47, "tenant-a/"));
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ(bound->put_id, 42u);
  EXPECT_EQ(bound->version, 42u);
  EXPECT_EQ(bound->holder, 0xc11e47u);
  EXPECT_EQ(bound->owner, "tenant-a/");
  EXPECT_EQ(bound->copies, std::vector<ObjectCopy>({{3, 4096 * 10}}));
}

TEST(RecordsTest, NodeRoundTrips) {
  NodeRecord no_transports = SampleNode();
  no_transports.transports.clear();
  for (const NodeRecord& record : {NodeRecord{}, SampleNode(), no_transports}) {
    auto decoded = DecodeNode(EncodeNode(record));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectEqual(*decoded, record);
  }
}

// Whatever EncodeNode accepts must decode again: a node record that cannot be
// read back makes the whole catalog unreadable at the next start.
TEST(RecordsTest, NodeWithTheMostTransportsRoundTrips) {
  NodeRecord record = SampleNode();
  record.transports.clear();
  for (size_t i = 0; i < kMaxNodeTransports; ++i)
    record.transports.push_back("t" + std::to_string(i));
  auto decoded = DecodeNode(EncodeNode(record));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectEqual(*decoded, record);
}

// Checks one decoder against every damaged variant of a valid encoding.
template <typename Decode>
void ExpectDamageIsDataLoss(const std::string& valid, Decode decode) {
  ASSERT_TRUE(decode(valid).ok());
  // Every proper prefix, including the empty string.
  for (size_t n = 0; n < valid.size(); ++n) {
    auto decoded = decode(std::string_view(valid).substr(0, n));
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << "prefix of " << n;
  }
  // Extended by one or more bytes.
  for (const std::string& tail : {std::string(1, '\0'), std::string("x"), std::string(9, '\xff')}) {
    auto decoded = decode(valid + tail);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss)
        << "extended by " << tail.size();
  }
  // Every other format byte.
  for (int format = 0; format < 256; ++format) {
    if (format == static_cast<uint8_t>(valid[0])) continue;
    std::string wrong = valid;
    wrong[0] = static_cast<char>(format);
    auto decoded = decode(wrong);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << "format " << format;
  }
}

TEST(RecordsTest, DamagedObjectIsDataLoss) {
  ExpectDamageIsDataLoss(EncodeObject(SampleObject()),
                         [](std::string_view b) { return DecodeObject(b); });
}

// The flash tier (docs/flash.md): an object with a flash copy, in memory or
// on flash only, round-trips in format 3; one without keeps format 1 or 2,
// so directories without flash read it; old records have no flash copy.
TEST(RecordsTest, ObjectsWithFlashCopiesRoundTrip) {
  ObjectRecord both = SampleObject();
  both.flash = {both.copies[0].node_id};
  ObjectRecord flash_only = SampleObject();
  flash_only.copies.clear();
  flash_only.flash = {3, 9};
  for (const ObjectRecord& record : {both, flash_only}) {
    std::string bytes = EncodeObject(record);
    EXPECT_EQ(bytes[0], 3) << "format 3";
    auto decoded = DecodeObject(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectEqual(*decoded, record);
    EXPECT_EQ(decoded->flash, record.flash);
  }
  std::string old_format = EncodeObject(SampleObject());
  EXPECT_NE(old_format[0], 3);
  auto decoded = DecodeObject(old_format);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->flash.empty()) << "older records are in memory only";
  ExpectDamageIsDataLoss(EncodeObject(flash_only),
                         [](std::string_view b) { return DecodeObject(b); });
}

TEST(RecordsTest, DamagedPendingPutIsDataLoss) {
  ExpectDamageIsDataLoss(EncodePendingPut(SamplePending()),
                         [](std::string_view b) { return DecodePendingPut(b); });
}

TEST(RecordsTest, DamagedNodeIsDataLoss) {
  ExpectDamageIsDataLoss(EncodeNode(SampleNode()),
                         [](std::string_view b) { return DecodeNode(b); });
}

// Layout of a node record, to damage its length fields precisely:
// format(1) node_id(8) name_len(8) name ...
TEST(RecordsTest, HugeLengthFieldsAreDataLoss) {
  // A string length of 2^64 - 1 inside an otherwise valid record.
  std::string node = EncodeNode(SampleNode());
  for (int i = 0; i < 8; ++i) node[9 + i] = '\xff';
  EXPECT_EQ(DecodeNode(node).status().code(), absl::StatusCode::kDataLoss);

  std::string pending = EncodePendingPut(SamplePending());  // format, put_id, key_len, ...
  for (int i = 0; i < 8; ++i) pending[9 + i] = '\xff';
  EXPECT_EQ(DecodePendingPut(pending).status().code(), absl::StatusCode::kDataLoss);

  // A node id over 32 bits.
  std::string object = EncodeObject(SampleObject());  // format, node_id (8 bytes), ...
  object[5] = 1;
  EXPECT_EQ(DecodeObject(object).status().code(), absl::StatusCode::kDataLoss);

  // A transport count of 2^64 - 1 must not make the decoder allocate for it.
  NodeRecord no_transports = SampleNode();
  no_transports.transports.clear();
  std::string counted = EncodeNode(no_transports);
  // (It sits before the identity digest's length and the last-seen time.)
  for (size_t i = counted.size() - 24; i < counted.size() - 16; ++i) counted[i] = '\xff';
  EXPECT_EQ(DecodeNode(counted).status().code(), absl::StatusCode::kDataLoss);
}

// Random garbage of every small length: decoders must fail cleanly.
TEST(RecordsTest, RandomBytesNeverCrashADecoder) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes(rng() % 120, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (!bytes.empty() && i % 2 == 0) bytes[0] = 1;  // get past the format byte half the time
    for (absl::Status status : {DecodeObject(bytes).status(), DecodePendingPut(bytes).status(),
                                DecodeNode(bytes).status()}) {
      if (!status.ok()) {
        EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
      }
    }
  }
}

}  // namespace
}  // namespace unipool
