// An in-process NodeIo for unit tests of the client above the transport
// (placement, fallback across copies, retries): each node's slab is a map
// of the byte ranges written to it, held in this process. Tests script
// faults per node (every request fails with a status; the next reads hand
// back damaged bytes) and count what the client asked of each node.
//
// Thread safety: thread-safe.
#ifndef UNIPOOL_TESTING_FAKE_NODE_IO_H_
#define UNIPOOL_TESTING_FAKE_NODE_IO_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "unipool/transport/node_io.h"

namespace unipool::testing {

class FakeNodeIo : public NodeIo {
 public:
  // Stores each op's bytes at its offset of `node`'s slab.
  absl::Status Write(const std::string& node, std::span<const WriteOp> ops) override;
  // Fills each op's buffer from `node`'s slab; memory never written reads
  // as zeros, as a fresh slab would.
  absl::Status Read(const std::string& node, std::span<const ReadOp> ops) override;
  std::string_view name() const override { return "fake"; }

  // Every later request to `node` fails with `status` (OkStatus: serves
  // again), as an unreachable node would.
  void FailNode(const std::string& node, absl::Status status);
  // The next `count` read requests to `node` return their bytes with one
  // flipped, as damaged memory or a stale location would.
  void DamageReads(const std::string& node, int count);
  // Reads check each op's bytes against its checksum and set *verified, as
  // shm and UC RDMA do (default: they do not, as RC RDMA and TCP).
  void VerifyReads(bool verify);

  // Requests so far to `node`, failed ones included.
  int reads(const std::string& node) const;
  int writes(const std::string& node) const;
  // Nodes written to at least once.
  std::vector<std::string> nodes_written() const;

 private:
  struct Slab {
    std::map<uint64_t, std::vector<uint8_t>> ranges;  // by offset
    absl::Status fail;
    int damaged_reads_left = 0;
    int reads = 0;
    int writes = 0;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Slab> slabs_ ABSL_GUARDED_BY(mu_);
  bool verify_reads_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_FAKE_NODE_IO_H_
