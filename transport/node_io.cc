#include "unipool/transport/node_io.h"

#include "unipool/common/checksum.h"

namespace unipool {

std::vector<WriteOp> HashedFirst(std::span<const WriteOp> ops) {
  std::vector<WriteOp> hashed(ops.begin(), ops.end());
  for (WriteOp& op : hashed) {
    if (op.hashed == nullptr) continue;
    op.checksum = Checksum(op.bytes);
    *op.hashed = op.checksum;
    op.hashed = nullptr;
  }
  return hashed;
}

}  // namespace unipool
