// llama.cpp's sequence state as integrations/llama reads and writes it,
// without llama.cpp: blocks cut from a state reassemble into the same
// bytes, a reassembled state is exactly StateBytes long (ParseState refuses
// one byte more or less), and a buffer of the wrong size is refused rather
// than overrun.
#include "state_layout.h"

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "gtest/gtest.h"

namespace unipool::llama {
namespace {

constexpr int32_t kSeq = 3;
constexpr uint32_t kBlockTokens = 4;

StateLayout Layout(bool v_trans, uint32_t streams) {
  StateLayout layout;
  layout.n_stream = streams;
  layout.v_trans = v_trans;
  // Two layers of different widths, as models with per-layer KV sizes have.
  for (uint64_t width : {8u, 12u}) {
    LayerLayout layer{.k_type = 1, .k_row = 2 * width, .v_type = 1};
    if (v_trans) {
      layer.v_elem = 2;
      layer.v_width = static_cast<uint32_t>(width);
    } else {
      layer.v_row = 2 * width;
    }
    layout.layers.push_back(layer);
  }
  return layout;
}

std::vector<std::vector<uint8_t>> RandomPayloads(const StateLayout& layout, size_t blocks) {
  std::mt19937 random(11);
  std::vector<std::vector<uint8_t>> payloads(
      blocks, std::vector<uint8_t>(PayloadBytes(layout, kBlockTokens)));
  for (auto& payload : payloads) {
    for (uint8_t& byte : payload) byte = static_cast<uint8_t>(random());
  }
  return payloads;
}

std::vector<std::span<const uint8_t>> Spans(const std::vector<std::vector<uint8_t>>& payloads) {
  return {payloads.begin(), payloads.end()};
}

class StateLayoutTest : public ::testing::TestWithParam<std::tuple<bool, uint32_t>> {};

TEST_P(StateLayoutTest, CutBlocksReassembleIntoTheSameState) {
  const auto [v_trans, streams] = GetParam();
  const StateLayout layout = Layout(v_trans, streams);
  const auto payloads = RandomPayloads(layout, 3);
  std::vector<uint8_t> state(StateBytes(layout, payloads.size(), kBlockTokens));
  ASSERT_TRUE(AssembleState(layout, kSeq, Spans(payloads), kBlockTokens, state).ok());

  absl::StatusOr<ParsedState> parsed = ParseState(state, kSeq);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->layout, layout);
  EXPECT_EQ(parsed->cells, payloads.size() * kBlockTokens);
  for (size_t b = 0; b < payloads.size(); ++b) {
    std::vector<uint8_t> block(PayloadBytes(layout, kBlockTokens));
    ASSERT_TRUE(
        CutBlock(*parsed, state, static_cast<int32_t>(b * kBlockTokens), kBlockTokens, block).ok());
    EXPECT_EQ(block, payloads[b]) << "block " << b;
  }
}

TEST_P(StateLayoutTest, StateBytesIsExact) {
  const auto [v_trans, streams] = GetParam();
  const StateLayout layout = Layout(v_trans, streams);
  const auto payloads = RandomPayloads(layout, 2);
  const size_t bytes = StateBytes(layout, payloads.size(), kBlockTokens);
  std::vector<uint8_t> state(bytes + 1, 0);
  ASSERT_TRUE(AssembleState(layout, kSeq, Spans(payloads), kBlockTokens,
                            std::span<uint8_t>(state).first(bytes))
                  .ok());
  EXPECT_FALSE(ParseState(state, kSeq).ok()) << "a byte left over";
  EXPECT_FALSE(ParseState(std::span<const uint8_t>(state).first(bytes - 1), kSeq).ok());
  EXPECT_TRUE(ParseState(std::span<const uint8_t>(state).first(bytes), kSeq).ok());
}

TEST_P(StateLayoutTest, ABufferOfTheWrongSizeIsRefused) {
  const auto [v_trans, streams] = GetParam();
  const StateLayout layout = Layout(v_trans, streams);
  const auto payloads = RandomPayloads(layout, 2);
  const size_t bytes = StateBytes(layout, payloads.size(), kBlockTokens);
  for (size_t size : {bytes - 1, bytes + 1}) {
    std::vector<uint8_t> state(size, 0xee);
    EXPECT_TRUE(
        absl::IsInvalidArgument(AssembleState(layout, kSeq, Spans(payloads), kBlockTokens, state)))
        << size;
    EXPECT_EQ(state, std::vector<uint8_t>(size, 0xee)) << "nothing written";
  }
}

INSTANTIATE_TEST_SUITE_P(VTransAndStreams, StateLayoutTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(1u, 2u)));

}  // namespace
}  // namespace unipool::llama
