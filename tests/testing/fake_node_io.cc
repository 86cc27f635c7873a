#include "unipool/testing/fake_node_io.h"

#include <algorithm>
#include <cstring>

#include "unipool/common/checksum.h"

namespace unipool::testing {

absl::Status FakeNodeIo::Write(const std::string& node, std::span<const WriteOp> ops) {
  absl::MutexLock lock(&mu_);
  Slab& slab = slabs_[node];
  ++slab.writes;
  if (!slab.fail.ok()) return slab.fail;
  for (const WriteOp& op : ops) {
    slab.ranges[op.offset].assign(op.bytes.begin(), op.bytes.end());
  }
  return absl::OkStatus();
}

absl::Status FakeNodeIo::Read(const std::string& node, std::span<const ReadOp> ops) {
  absl::MutexLock lock(&mu_);
  Slab& slab = slabs_[node];
  ++slab.reads;
  if (!slab.fail.ok()) return slab.fail;
  bool damage = slab.damaged_reads_left > 0;
  if (damage) --slab.damaged_reads_left;
  for (const ReadOp& op : ops) {
    std::fill(op.into.begin(), op.into.end(), 0);
    auto it = slab.ranges.find(op.offset);
    if (it != slab.ranges.end()) {
      std::memcpy(op.into.data(), it->second.data(), std::min(it->second.size(), op.into.size()));
    }
    if (damage && !op.into.empty()) op.into[op.into.size() / 2] ^= 0x5a;
    if (verify_reads_ && op.verified != nullptr) *op.verified = Checksum(op.into) == op.checksum;
  }
  return absl::OkStatus();
}

void FakeNodeIo::FailNode(const std::string& node, absl::Status status) {
  absl::MutexLock lock(&mu_);
  slabs_[node].fail = std::move(status);
}

void FakeNodeIo::DamageReads(const std::string& node, int count) {
  absl::MutexLock lock(&mu_);
  slabs_[node].damaged_reads_left = count;
}

void FakeNodeIo::VerifyReads(bool verify) {
  absl::MutexLock lock(&mu_);
  verify_reads_ = verify;
}

int FakeNodeIo::reads(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  auto it = slabs_.find(node);
  return it == slabs_.end() ? 0 : it->second.reads;
}

int FakeNodeIo::writes(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  auto it = slabs_.find(node);
  return it == slabs_.end() ? 0 : it->second.writes;
}

std::vector<std::string> FakeNodeIo::nodes_written() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [node, slab] : slabs_) {
    if (!slab.ranges.empty()) out.push_back(node);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace unipool::testing
