// A pool node process with a flash tier that demotes pages and then waits to
// be killed: flash_node_test's first life of a node. Usage:
//   flash_node_writer SSD_DIR SSD_SIZE STATE_DIR PAGES PAGE_BYTES
// Prints "flushed PAGES" once every page is written to its segments.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "unipool/common/process.h"
#include "unipool/common/units.h"
#include "unipool/node/node.h"
#include "unipool/testing/test_pages.h"

int main(int argc, char** argv) {
  int pages = 0;
  size_t page_bytes = 0;
  auto size = argc == 6 ? unipool::ParseSize(argv[2]) : absl::InvalidArgumentError("usage");
  if (!size.ok() || !absl::SimpleAtoi(argv[4], &pages) || !absl::SimpleAtoi(argv[5], &page_bytes)) {
    std::fprintf(stderr, "usage: flash_node_writer SSD_DIR SSD_SIZE STATE_DIR PAGES PAGE_BYTES\n");
    return 2;
  }
  unipool::BlockTerminationSignals();
  unipool::NodeOptions options;
  options.pool_size = 8 << 20;
  options.directory = "127.0.0.1:1";  // none: this node only keeps its flash
  options.listen = "127.0.0.1:0";
  options.rdma = false;
  options.shm = false;
  options.prefault = false;
  options.state_dir = argv[3];
  options.ssd_dir = argv[1];
  options.ssd_size = *size;
  auto node = unipool::Node::Start(options);
  if (!node.ok()) {
    std::fprintf(stderr, "flash_node_writer: %s\n", node.status().ToString().c_str());
    return 1;
  }
  unipool::flash::FlashStore& store = (*node)->flash()->store();
  for (int i = 0; i < pages; ++i) {
    std::string key = absl::StrCat("prefix/", i);
    absl::Status demoted = store.Demote(key, 1, unipool::testing::PageBytes(key, page_bytes));
    if (!demoted.ok()) {
      std::fprintf(stderr, "flash_node_writer: %s\n", demoted.ToString().c_str());
      return 1;
    }
  }
  store.Flush();
  std::printf("flushed %d\n", pages);
  std::fflush(stdout);
  unipool::WaitForTerminationSignal();  // the test kills it with SIGKILL first
  return 0;
}
