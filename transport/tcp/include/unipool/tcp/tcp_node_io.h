// NodeIo over unipool frames on TCP: the fallback everywhere, and the
// baseline every faster path is measured against.
#ifndef UNIPOOL_TCP_TCP_NODE_IO_H_
#define UNIPOOL_TCP_TCP_NODE_IO_H_

#include "unipool/transport/connection_pool.h"
#include "unipool/transport/node_io.h"

namespace unipool {

class TcpNodeIo : public NodeIo {
 public:
  // `pool` must outlive this object.
  explicit TcpNodeIo(ConnectionPool* pool) : pool_(pool) {}
  absl::Status Write(const std::string& node_address, std::span<const WriteOp> ops) override;
  absl::Status Read(const std::string& node_address, std::span<const ReadOp> ops) override;
  std::string_view name() const override { return "tcp"; }
  // Each piece of a write is hashed just after it was sent.
  bool HashesWhileWriting() const override { return true; }

 private:
  ConnectionPool* const pool_;
};

}  // namespace unipool

#endif  // UNIPOOL_TCP_TCP_NODE_IO_H_
