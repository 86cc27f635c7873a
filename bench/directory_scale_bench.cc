// unipool-directory-scale-bench answers issue 24's scale questions: how much
// RAM does the directory spend per object, and how fast does a restarted
// directory load its catalog? It drives a Directory in this process (no
// network: the catalog and the in-memory map are what is measured), fills it
// with --objects committed objects of mixed 16-200 byte keys on one node
// (a registration, no memory behind it), then runs itself again on the same
// catalog and times Directory::Open.
//
//   unipool-directory-scale-bench [--objects 1000000] [--batch 1024] [--db DIR]
//
// Prints one `dirscale phase=... objects=... ...` line per phase: RSS per
// object while filling (resident bytes after, minus before, over objects)
// and after a restart, the fill rate and the load rate. RSS is read from
// /proc/self/statm (Linux; elsewhere it prints 0).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "unipool/common/process.h"
#include "unipool/directory/directory.h"
#include "unipool/platform/memory.h"

ABSL_FLAG(uint64_t, objects, 1000000, "committed objects to fill the catalog with");
ABSL_FLAG(int, batch, 1024, "puts per PutStart / PutCommit call");
ABSL_FLAG(std::string, db, "", "the catalog's directory (default: a fresh temporary one, removed)");
ABSL_FLAG(bool, load_only, false, "only open the catalog at --db and report (the second phase)");

namespace {

constexpr char kProgram[] = "unipool-directory-scale-bench";
constexpr uint64_t kObjectBytes = 4096;  // one allocation unit each

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << kProgram << ": " << what << "\n";
  std::exit(1);
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

unipool::DirectoryOptions Options() {
  unipool::DirectoryOptions options;
  options.restart_grace = absl::ZeroDuration();
  return options;
}

std::unique_ptr<unipool::Directory> Open(const std::string& db) {
  auto directory = unipool::Directory::Open(db, Options());
  if (!directory.ok()) Fail("opening " + db + ": " + directory.status().ToString());
  return std::move(*directory);
}

// Keys of 16-200 bytes, as engines make them (a model and layer prefix, a
// token-hash chain): random lengths, unique by their counter.
std::string KeyOf(uint64_t i, std::mt19937_64& random) {
  std::string key = absl::StrFormat("m/%x/", i);
  size_t length = 16 + random() % 185;
  while (key.size() < length) key.push_back('a' + random() % 26);
  return key;
}

void Fill(unipool::Directory& directory, uint64_t objects, int batch) {
  unipool::NodeRegistration node;
  node.name = "scale-node";
  node.host = "scale-host";
  node.data_address = "127.0.0.1:1";
  node.slab_id = 1;
  // Each object takes one allocation unit (16 KiB in the POSIX build).
  const uint64_t unit = std::max<uint64_t>(kObjectBytes, unipool::platform::kAllocationAlignment);
  node.slab_size = (objects + objects / 8 + 1024) * unit;
  node.transports = {"tcp"};
  if (auto r = directory.RegisterNode(node); !r.ok()) Fail("register: " + r.status().ToString());
  std::mt19937_64 random(42);
  std::vector<std::string> keys;
  std::vector<unipool::PutRequest> puts;
  std::vector<unipool::CommitRequest> commits;
  for (uint64_t done = 0; done < objects;) {
    uint64_t n = std::min<uint64_t>(batch, objects - done);
    keys.clear();
    puts.clear();
    commits.clear();
    for (uint64_t i = 0; i < n; ++i) keys.push_back(KeyOf(done + i, random));
    for (const std::string& key : keys) puts.push_back({.key = key, .length = kObjectBytes});
    for (auto& reservation : directory.PutStart(puts)) {
      if (!reservation.ok()) Fail("put start: " + reservation.status().ToString());
      commits.push_back({.put_id = reservation->put_id, .checksum = random()});
    }
    for (const absl::Status& s : directory.PutCommit(commits)) {
      if (!s.ok()) Fail("put commit: " + s.ToString());
    }
    done += n;
  }
}

void Report(const char* phase, uint64_t objects, uint64_t rss_before, uint64_t rss_after,
            absl::Duration took) {
  double per_object =
      objects == 0 ? 0 : static_cast<double>(rss_after - std::min(rss_before, rss_after)) / objects;
  std::printf(
      "dirscale phase=%s objects=%lu seconds=%.2f objects_per_s=%.0f rss_mib=%.1f "
      "rss_bytes_per_object=%.0f\n",
      phase, static_cast<unsigned long>(objects), absl::ToDoubleSeconds(took),
      objects / absl::ToDoubleSeconds(took), rss_after / 1048576.0, per_object);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  unipool::ParseFlags(
      argc, argv, "unipool-directory-scale-bench [--objects 1000000] [--batch 1024] [--db DIR]");
  const uint64_t objects = absl::GetFlag(FLAGS_objects);
  std::string db = absl::GetFlag(FLAGS_db);
  if (absl::GetFlag(FLAGS_load_only)) {
    if (db.empty()) Fail("--load_only needs --db");
    uint64_t before = ResidentBytes();
    absl::Time start = absl::Now();
    auto directory = Open(db);
    absl::Duration took = absl::Now() - start;
    uint64_t loaded = directory->Status().objects;
    Report("load", loaded, before, ResidentBytes(), took);
    return loaded == objects ? 0 : 1;
  }
  bool temporary = db.empty();
  if (temporary) {
    db = (std::filesystem::temp_directory_path() / absl::StrFormat("unipool-dirscale-%d", getpid()))
             .string();
  }
  {
    auto directory = Open(db);
    uint64_t before = ResidentBytes();
    absl::Time start = absl::Now();
    Fill(*directory, objects, absl::GetFlag(FLAGS_batch));
    Report("fill", objects, before, ResidentBytes(), absl::Now() - start);
  }
  // A fresh process, as a restart is: its RSS holds only what loading took.
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string command =
      absl::StrFormat("'%s' --load_only --db '%s' --objects %d", self, db, objects);
  int status = std::system(command.c_str());
  if (temporary) std::filesystem::remove_all(db);
  return status == 0 ? 0 : 1;
}
