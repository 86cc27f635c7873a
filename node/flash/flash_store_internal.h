// FlashStore's private types, shared by its three files (flash_store.cc, the
// API; flash_writer.cc, the writer thread; flash_rebuild.cc, the scan at open).
#ifndef UNIPOOL_FLASH_FLASH_STORE_INTERNAL_H_
#define UNIPOOL_FLASH_FLASH_STORE_INTERNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "unipool/flash/flash_store.h"
#include "unipool/flash/record.h"

namespace unipool::flash {

// Debian's Abseil has its own string_view, which its hash maps look keys up by.
inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

// What one segment's scan found.
struct FlashStore::ScanResult {
  struct Found {
    std::string key;
    RecordHeader header;
    uint64_t offset = 0;
    bool intact = true;  // false: its bytes failed their checksum
  };
  std::vector<Found> records;
  uint64_t end = 0;      // just after its last whole record
  uint64_t damaged = 0;  // runs of blocks with no valid header before a valid one
  uint64_t file_bytes = 0;
};

}  // namespace unipool::flash

#endif  // UNIPOOL_FLASH_FLASH_STORE_INTERNAL_H_
