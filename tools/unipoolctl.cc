// unipoolctl: drive a unipool pool from a shell.
//
//   unipoolctl [--directory HOST:PORT] put KEY FILE [--replace]
//   unipoolctl [--directory HOST:PORT] get KEY FILE
//   unipoolctl [--directory HOST:PORT] status | stat KEY | exists KEY | rm KEY
//
// Every error is one line on stderr and a non-zero exit status.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "common/units.h"
#include "tools/process.h"
#include "unipool/client.h"

ABSL_FLAG(std::string, directory, "",
          "HOST:PORT of the directory (default: $UNIPOOL_DIRECTORY, else 127.0.0.1:7300)");
ABSL_FLAG(bool, replace, false, "put: overwrite an existing key");

namespace {

constexpr char kUsage[] =
    "unipoolctl [--directory HOST:PORT] COMMAND\n"
    "  put KEY FILE [--replace]   store FILE's bytes under KEY\n"
    "  get KEY FILE               write KEY's bytes to FILE ('-' for stdout)\n"
    "  stat KEY                   where KEY lives, its size and version\n"
    "  exists KEY                 exit 0 if KEY exists, 1 if not\n"
    "  rm KEY                     remove KEY\n"
    "  status                     pool totals and one row per node";

int Fail(const std::string& message) {
  std::cerr << "unipoolctl: " << message << "\n";
  return 1;
}

std::string DirectoryAddress() {
  std::string flag = absl::GetFlag(FLAGS_directory);
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("UNIPOOL_DIRECTORY"); env != nullptr && *env) return env;
  return "127.0.0.1:7300";
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  if (path == "-") {
    return std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size() &&
           std::fflush(stdout) == 0;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

int Status(unipool::Client& client) {
  auto state = client.Status();
  if (!state.ok()) return Fail(Message(state.status()));
  int up = 0;
  for (const auto& n : state->nodes) up += n.up ? 1 : 0;
  std::printf("pool: %d/%zu nodes up, %s used of %s, %llu objects, %llu puts in flight\n", up,
              state->nodes.size(), unipool::FormatSize(state->used).c_str(),
              unipool::FormatSize(state->capacity).c_str(),
              static_cast<unsigned long long>(state->objects),
              static_cast<unsigned long long>(state->pending_puts));
  std::printf("%-4s %-24s %-22s %-5s %-10s %10s %10s %8s\n", "ID", "NAME", "ADDRESS", "STATE",
              "TRANSPORT", "CAPACITY", "USED", "OBJECTS");
  for (const auto& n : state->nodes) {
    std::string transports;
    for (const auto& t : n.transports) transports += (transports.empty() ? "" : ",") + t;
    std::printf("%-4u %-24s %-22s %-5s %-10s %10s %10s %8llu\n", n.node_id, n.name.c_str(),
                n.data_address.c_str(), n.up ? "up" : "down", transports.c_str(),
                unipool::FormatSize(n.capacity).c_str(), unipool::FormatSize(n.used).c_str(),
                static_cast<unsigned long long>(n.objects));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = unipool::ParseFlags(argc, argv, kUsage);
  if (args.size() < 2) return Fail(std::string("no command given\n") + kUsage);
  std::string command = args[1];
  auto need = [&](size_t count, const char* usage) {
    if (args.size() != count + 2) {
      Fail(absl::StrFormat("usage: unipoolctl %s", usage));
      return false;
    }
    return true;
  };
  static const std::vector<std::string> kCommands = {"put", "get", "stat", "exists", "rm", "status"};
  if (std::find(kCommands.begin(), kCommands.end(), command) == kCommands.end()) {
    return Fail(absl::StrFormat("unknown command '%s'\n%s", command, kUsage));
  }

  unipool::ClientOptions options;
  options.directory = DirectoryAddress();
  options.name = "unipoolctl";
  auto client = unipool::Client::Connect(options);
  if (!client.ok()) return Fail(Message(client.status()));

  if (command == "status") return Status(**client);
  if (command == "put") {
    if (!need(2, "put KEY FILE [--replace]")) return 2;
    std::vector<uint8_t> bytes;
    if (!ReadFile(args[3], &bytes)) return Fail(absl::StrFormat("cannot read %s", args[3]));
    absl::Status s = (*client)->Put(args[2], bytes, {.replace = absl::GetFlag(FLAGS_replace)});
    if (!s.ok()) return Fail(Message(s));
    std::fprintf(stderr, "stored %s (%s)\n", args[2], unipool::FormatSize(bytes.size()).c_str());
    return 0;
  }
  if (command == "get") {
    if (!need(2, "get KEY FILE")) return 2;
    auto bytes = (*client)->Get(args[2]);
    if (!bytes.ok()) return Fail(Message(bytes.status()));
    if (!WriteFile(args[3], *bytes)) return Fail(absl::StrFormat("cannot write %s", args[3]));
    return 0;
  }
  if (command == "stat") {
    if (!need(1, "stat KEY")) return 2;
    auto info = (*client)->Stat(args[2]);
    if (!info.ok()) return Fail(Message(info.status()));
    std::printf("key: %s\nsize: %s (%llu bytes)\nnode: %u (%s, %s)\nversion: %llu\nchecksum: %016llx\n",
                args[2], unipool::FormatSize(info->length).c_str(),
                static_cast<unsigned long long>(info->length), info->node_id,
                info->node_address.c_str(), info->node_up ? "up" : "down",
                static_cast<unsigned long long>(info->version),
                static_cast<unsigned long long>(info->checksum));
    return 0;
  }
  if (command == "exists") {
    if (!need(1, "exists KEY")) return 2;
    auto exists = (*client)->Exists(args[2]);
    if (!exists.ok()) return Fail(Message(exists.status()));
    std::printf("%s\n", *exists ? "yes" : "no");
    return *exists ? 0 : 1;
  }
  if (!need(1, "rm KEY")) return 2;
  absl::Status s = (*client)->Remove(args[2]);
  if (!s.ok()) return Fail(Message(s));
  return 0;
}
