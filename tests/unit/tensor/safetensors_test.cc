// The safetensors parser rejects every malformed header with an error that
// names the tensor, and files written back are byte-identical.
#include "unipool/tensor/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "unipool/tensor/dtype.h"

namespace unipool {
namespace {

std::vector<uint8_t> WithLength(const std::string& json) {
  std::vector<uint8_t> raw(8);
  for (int i = 0; i < 8; ++i) raw[i] = (json.size() >> (8 * i)) & 0xff;
  raw.insert(raw.end(), json.begin(), json.end());
  return raw;
}

// Parses `json` as the header of a file with `data_bytes` bytes of data.
absl::StatusOr<SafetensorsHeader> Parse(const std::string& json, uint64_t data_bytes) {
  std::vector<uint8_t> raw = WithLength(json);
  return ParseSafetensorsHeader(raw, raw.size() + data_bytes, "m.safetensors");
}

void ExpectRejected(const std::string& json, uint64_t data_bytes, const std::string& mentions) {
  absl::StatusOr<SafetensorsHeader> header = Parse(json, data_bytes);
  ASSERT_FALSE(header.ok()) << json;
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(header.status().message().find(mentions), std::string::npos)
      << header.status().message() << " should mention " << mentions;
  EXPECT_NE(header.status().message().find("m.safetensors"), std::string::npos);
}

TEST(DType, SizesOfTheSafetensorsTable) {
  EXPECT_EQ(DTypeSize("F64"), 8u);
  EXPECT_EQ(DTypeSize("F32"), 4u);
  EXPECT_EQ(DTypeSize("F16"), 2u);
  EXPECT_EQ(DTypeSize("BF16"), 2u);
  EXPECT_EQ(DTypeSize("F8_E4M3"), 1u);
  EXPECT_EQ(DTypeSize("F8_E5M2"), 1u);
  EXPECT_EQ(DTypeSize("I64"), 8u);
  EXPECT_EQ(DTypeSize("I32"), 4u);
  EXPECT_EQ(DTypeSize("I16"), 2u);
  EXPECT_EQ(DTypeSize("I8"), 1u);
  EXPECT_EQ(DTypeSize("U8"), 1u);
  EXPECT_EQ(DTypeSize("BOOL"), 1u);
  EXPECT_FALSE(DTypeSize("F4").has_value());
  EXPECT_FALSE(DTypeSize("f32").has_value());
  EXPECT_GE(KnownDTypes().size(), 12u);
  EXPECT_EQ(*TensorBytes("BF16", std::vector<uint64_t>{3, 5}), 30u);
  EXPECT_EQ(*TensorBytes("F32", {}), 4u);  // a scalar
  EXPECT_FALSE(TensorBytes("F64", std::vector<uint64_t>{1ull << 40, 1ull << 40}).ok());
}

TEST(Safetensors, ParsesTensorsMetadataAndKeepsTheRawHeader) {
  std::string json =
      R"({"b":{"dtype":"I8","shape":[2,3],"data_offsets":[8,14]},)"
      R"("__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   )";
  absl::StatusOr<SafetensorsHeader> header = Parse(json, 14);
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 2u);
  EXPECT_EQ(header->tensors[0].name, "a");  // data order, not JSON order
  EXPECT_EQ(header->tensors[1].name, "b");
  EXPECT_EQ(header->tensors[1].shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(header->metadata.at("format"), "pt");
  EXPECT_EQ(header->data_offset, 8 + json.size());
  EXPECT_EQ(header->data_bytes(), 14u);
  std::vector<uint8_t> raw = WithLength(json);
  EXPECT_EQ(header->raw, std::string(raw.begin(), raw.end()));
}

TEST(Safetensors, EmptyAndZeroSizedTensorsAreFine) {
  EXPECT_TRUE(Parse("{}", 0).ok());
  EXPECT_TRUE(Parse(R"({"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},)"
                    R"("y":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                    1)
                  .ok());
}

TEST(Safetensors, RejectsAHeaderLongerThanItsFile) {
  std::vector<uint8_t> raw = WithLength("{}");
  raw[0] = 200;  // claims 200 bytes of JSON; the file has 2
  auto header = ParseSafetensorsHeader(raw, raw.size(), "m.safetensors");
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.status().message().find("longer than the file"), std::string::npos);
  EXPECT_FALSE(ParseSafetensorsHeader(std::vector<uint8_t>(5), 5, "m.safetensors").ok());
}

TEST(Safetensors, RejectsAHeaderOverTheLimit) {
  std::vector<uint8_t> raw(8);
  uint64_t n = kMaxSafetensorsHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) raw[i] = (n >> (8 * i)) & 0xff;
  auto header = ParseSafetensorsHeader(raw, n + 100, "m.safetensors");
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.status().message().find("limit"), std::string::npos);
}

TEST(Safetensors, RejectsBadJson) {
  ExpectRejected(R"({"a":{"dtype":"F32",)", 0, "not valid JSON");
  ExpectRejected(R"([1,2])", 0, "not a JSON object");
}

TEST(Safetensors, RejectsDuplicateNames) {
  ExpectRejected(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                 R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                 2, "'w' appears twice");
}

TEST(Safetensors, RejectsUnknownDtypes) {
  ExpectRejected(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", 1,
                 "'w': unknown dtype");
  ExpectRejected(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,1]}})", 1, "'w': missing dtype");
}

TEST(Safetensors, RejectsAShapeThatDisagreesWithItsOffsets) {
  ExpectRejected(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,10]}})", 10,
                 "'w': dtype BF16 and shape need 12 bytes but data_offsets hold 10");
  ExpectRejected(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "'w': shape");
  ExpectRejected(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4, "'w': shape");
  ExpectRejected(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
                 "'w'");
}

TEST(Safetensors, RejectsOffsetsOutOfRange) {
  ExpectRejected(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4,
                 "'w': data_offsets [0, 8] out of range");
  ExpectRejected(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[5,4]}})", 8, "'w'");
  ExpectRejected(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1, "'w'");
  ExpectRejected(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,-1]}})", 1, "'w'");
}

TEST(Safetensors, RejectsOverlappingData) {
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                 6, "'b': data [2, 6] overlaps");
}

TEST(Safetensors, RejectsGappedData) {
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}})",
                 10, "'b': gap of 2 bytes");
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 9,
                 "5 bytes after the last tensor");
}

TEST(Safetensors, RejectsBadMetadataAndNames) {
  ExpectRejected(R"({"__metadata__":{"n":3}})", 0, "__metadata__ 'n'");
  ExpectRejected(R"({"__metadata__":[]})", 0, "__metadata__");
  ExpectRejected(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1, "empty name");
  ExpectRejected(R"({"w":[1]})", 0, "'w': entry is not an object");
}

TEST(Safetensors, BuildsHeadersTheParserAccepts) {
  std::vector<SafetensorsTensor> tensors = {{"x", "F32", {2, 2}}, {"y", "BF16", {3}}};
  auto header = BuildSafetensorsHeader(tensors, {{"format", "pt"}});
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->raw.size() % 8, 0u);
  std::vector<uint8_t> raw(header->raw.begin(), header->raw.end());
  auto parsed = ParseSafetensorsHeader(raw, raw.size() + 22, "built");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->tensors.size(), 2u);
  EXPECT_EQ(parsed->tensors[1].begin, 16u);
  EXPECT_EQ(parsed->tensors[1].end, 22u);
  EXPECT_EQ(parsed->metadata, header->metadata);
  EXPECT_FALSE(BuildSafetensorsHeader({{"x", "F32", {1}}, {"x", "F32", {1}}}, {}).ok());
  EXPECT_FALSE(BuildSafetensorsHeader({{"x", "Q1", {1}}}, {}).ok());
}

TEST(SafetensorsIndex, ChecksFileNames) {
  auto index = ParseSafetensorsIndex(
      R"({"metadata":{"total_size":3},"weight_map":{"a":"m-2.safetensors","b":"m-1.safetensors",)"
      R"("c":"m-1.safetensors"}})");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->files, (std::vector<std::string>{"m-1.safetensors", "m-2.safetensors"}));
  EXPECT_FALSE(ParseSafetensorsIndex(R"({"weight_map":{"a":"../x.safetensors"}})").ok());
  EXPECT_FALSE(ParseSafetensorsIndex(R"({"weight_map":{"a":3}})").ok());
  EXPECT_FALSE(ParseSafetensorsIndex(R"({"weight_map":{}})").ok());
  EXPECT_FALSE(ParseSafetensorsIndex(R"({"metadata":{}})").ok());
}

class SafetensorsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/safetensors_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteFile(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::string ReadFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // A file with hand-written JSON (unusual order and spacing) and data.
  std::string HandWritten(const std::string& json, const std::string& data) {
    std::vector<uint8_t> raw = WithLength(json);
    return std::string(raw.begin(), raw.end()) + data;
  }

  std::filesystem::path dir_;
};

TEST_F(SafetensorsFiles, WritesBackByteIdenticalFiles) {
  std::string original = HandWritten(
      R"({ "z" : {"shape":[2],"dtype":"I8","data_offsets":[3,5]},)"
      R"( "a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}, "__metadata__": {"k":"v"} }  )",
      "abcde");
  WriteFile("m.safetensors", original);
  auto file = ReadSafetensorsFile(dir_ / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  std::string data = original.substr(file->header.data_offset);
  auto copy = dir_ / "copy.safetensors";
  absl::Status written = WriteSafetensorsFile(
      copy, file->header, [&](const SafetensorsTensor& t, uint64_t offset, std::span<uint8_t> out) {
        std::memcpy(out.data(), data.data() + t.begin + offset, out.size());
        return absl::OkStatus();
      });
  ASSERT_TRUE(written.ok()) << written;
  EXPECT_EQ(ReadFile(copy), original);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "copy.safetensors.partial"));
}

TEST_F(SafetensorsFiles, AFailedWriteLeavesNoFile) {
  auto header = BuildSafetensorsHeader({{"x", "U8", {4}}}, {});
  ASSERT_TRUE(header.ok());
  absl::Status written = WriteSafetensorsFile(
      dir_ / "x.safetensors", *header, [](const SafetensorsTensor&, uint64_t, std::span<uint8_t>) {
        return absl::UnavailableError("node gone");
      });
  EXPECT_TRUE(absl::IsUnavailable(written));
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(SafetensorsFiles, OpensShardedFolders) {
  WriteFile("m-1.safetensors",
            HandWritten(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "xy"));
  WriteFile("m-2.safetensors",
            HandWritten(R"({"b":{"dtype":"I16","shape":[1],"data_offsets":[0,2]}})", "zw"));
  WriteFile(std::string(kSafetensorsIndexName),
            R"({"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors"}})");
  auto model = OpenSafetensorsModel(dir_);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->files.size(), 2u);
  EXPECT_EQ(model->tensor_count(), 2u);
  EXPECT_EQ(model->data_bytes(), 4u);
  EXPECT_FALSE(model->index_raw.empty());

  // The index and the shards must agree.
  WriteFile(std::string(kSafetensorsIndexName),
            R"({"weight_map":{"a":"m-2.safetensors","b":"m-2.safetensors"}})");
  auto mismatched = OpenSafetensorsModel(dir_);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("'a'"), std::string::npos);
  WriteFile(std::string(kSafetensorsIndexName),
            R"({"weight_map":{"a":"m-1.safetensors","c":"m-1.safetensors"}})");
  auto missing = OpenSafetensorsModel(dir_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'c' is not in m-1.safetensors"), std::string::npos);
  // A tensor in a shard but not in the index.
  WriteFile("m-1.safetensors",
            HandWritten(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("d":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                        "xy"));
  WriteFile(std::string(kSafetensorsIndexName), R"({"weight_map":{"a":"m-1.safetensors"}})");
  auto extra = OpenSafetensorsModel(dir_);
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find("'d'"), std::string::npos);
}

TEST_F(SafetensorsFiles, ReportsMissingAndMalformedFiles) {
  EXPECT_FALSE(OpenSafetensorsModel(dir_ / "nope.safetensors").ok());
  WriteFile("bad.safetensors",
            HandWritten(R"({"w":{"dtype":"X","shape":[1],"data_offsets":[0,1]}})", "a"));
  auto bad = OpenSafetensorsModel(dir_ / "bad.safetensors");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.safetensors: tensor 'w'"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace unipool
