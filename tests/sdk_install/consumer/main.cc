// An application of the installed SDK: `consumer DIRECTORY` stores a page,
// reads it back and asks the pool's state; `consumer DIRECTORY --unreachable`
// checks that connecting to nothing fails Unavailable. Exit 0 when all held.
#include <cstdio>
#include <cstring>
#include <vector>

#include "unipool/admin.h"
#include "unipool/client.h"

namespace {

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: consumer DIRECTORY [--unreachable]\n");
    return 2;
  }
  unipool::ClientOptions options;
  options.directory = argv[1];
  options.name = "sdk-consumer";
  options.connect_timeout = absl::Seconds(2);
  auto client = unipool::Client::Connect(options);
  if (argc > 2 && std::strcmp(argv[2], "--unreachable") == 0) {
    if (client.ok()) return Fail("connected to nothing", absl::OkStatus());
    if (!absl::IsUnavailable(client.status())) return Fail("want Unavailable", client.status());
    std::printf("unipool %s: %s\n", unipool::SdkVersion(), client.status().ToString().c_str());
    return 0;
  }
  if (!client.ok()) return Fail("connect", client.status());
  std::vector<uint8_t> page(64 << 10, 7);
  absl::Status put = (*client)->Put("consumer/page", page, {.replace = true});
  if (!put.ok()) return Fail("put", put);
  absl::StatusOr<std::vector<uint8_t>> got = (*client)->Get("consumer/page");
  if (!got.ok()) return Fail("get", got.status());
  if (*got != page) return Fail("get", absl::DataLossError("different bytes"));
  absl::StatusOr<unipool::PoolState> pool = unipool::Admin(**client).State();
  if (!pool.ok()) return Fail("state", pool.status());
  std::printf("unipool %s: put and got %zu bytes; %zu node(s), %llu object(s)\n",
              unipool::SdkVersion(), got->size(), pool->nodes.size(),
              static_cast<unsigned long long>(pool->objects));
  return 0;
}
