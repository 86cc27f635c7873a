// A unipool pool on a Soft-RoCE mesh (tests/rdma_vm/mesh-run): the RDMA topology of a
// switchless Thunderbolt cluster, where each pair of machines reaches the other only through the
// cable between them, plus a management Ethernet (mesh-run --ethernet) that carries TCP
// whatever the cables do. tests/rdma_vm/mesh-pool.sh runs the directory on machine a, a node
// on every machine (RDMA on every port, advertised as "<cable address>:7301,<Ethernet
// address>:7301") and this program on a as the pool's client:
//
//   FullMesh (cables a-b, a-c, b-c):
//     - every node shows the directory its ports, one per cable, with the cable's GID;
//     - pages to b go over cable a-b and pages to c over a-c, end to end, RC and UC: the client
//       found each node's path by itself, and no path pairs two cables that do not meet;
//     - a cable pulled under an engine-like workload (puts, prefix lookups, gets from four
//       threads), in a pool filled until it evicts, costs no failed request and no wrong byte:
//       traffic to b moves to TCP over the Ethernet, no node is marked down, and once the cable
//       is back RDMA carries b's pages again. The longest single call is printed ("mesh:
//       longest stall ...").
//     - a cable's link readdressed at both ends (new GIDs, as after a replug with new
//       link-local addresses): the node re-registers the new GID, the client plans its path
//       again, and RDMA carries the node's pages over that cable again.
//   TwoCables (cables a-b, a-b): one batch's bytes move over both cables.
//
// Run as `mesh-pool.sh [--cables ...] -- mesh_test --gtest_filter=...` (ctest rdma_vm_mesh and
// rdma_vm_mesh_two_cables do); a case whose topology is not the mesh's skips itself.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/common/rdma_port.h"
#include "unipool/pool_types.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

constexpr int kNodePort = 7301;

std::string Env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value == nullptr ? "" : value;
}

std::vector<std::string> Words(const std::string& text) {
  return absl::StrSplit(text, ' ', absl::SkipEmpty());
}

// The mesh's cables as mesh-run names them: cable k (1-based, in UNIPOOL_MESH_CABLES order)
// between x < y is "xy" ("xy2", "xy3"... for more between the same pair), rxe device rxe_<name>
// at both ends, with GID ::ffff:10.77.k.1 on x and ::ffff:10.77.k.2 on y.
struct Cable {
  std::string name;
  std::string x, y;
  int number = 0;
};

std::vector<Cable> MeshCables() {
  std::vector<Cable> cables;
  std::map<std::string, int> per_pair;
  for (absl::string_view spec :
       absl::StrSplit(Env("UNIPOOL_MESH_CABLES"), ',', absl::SkipEmpty())) {
    std::vector<std::string> ends = absl::StrSplit(spec, '-');
    if (ends.size() != 2) continue;
    Cable c;
    c.x = std::min(ends[0], ends[1]);
    c.y = std::max(ends[0], ends[1]);
    c.number = static_cast<int>(cables.size()) + 1;
    int n = ++per_pair[c.x + c.y];
    c.name = c.x + c.y + (n == 1 ? "" : std::to_string(n));
    cables.push_back(c);
  }
  return cables;
}

std::string Gid(int cable, int end) { return absl::StrFormat("::ffff:10.77.%d.%d", cable, end); }

std::string Describe(const RdmaPathStats& p) {
  return absl::StrFormat("%s -> %s (%s) %s %s: %u bytes, %u requests, %u errors, %u retries%s",
                         p.local_port, p.remote_port, p.node_address, p.mode, p.up ? "up" : "DOWN",
                         p.bytes, p.requests, p.errors, p.retries,
                         p.last_error.empty() ? "" : ", last error: " + p.last_error);
}

// "17:48:56.407": to line the test's reports up with the processes' logs.
std::string Clock() { return absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::UTCTimeZone()); }

void PrintPaths(const std::string& label, const ClientStats& s) {
  std::printf("mesh: %s: at %s\n", label.c_str(), Clock().c_str());
  for (const RdmaPathStats& p : s.rdma_paths) {
    std::printf("mesh: %s: path %s\n", label.c_str(), Describe(p).c_str());
  }
  for (const TcpFallbackStats& f : s.tcp_fallbacks) {
    std::printf("mesh: %s: TCP only to %s: %s\n", label.c_str(), f.node_address.c_str(),
                f.reason.c_str());
  }
  std::printf("mesh: %s: rdma_requests %lu, tcp_requests %lu, shm_requests %lu, retries %lu\n",
              label.c_str(), static_cast<unsigned long>(s.rdma_requests),
              static_cast<unsigned long>(s.tcp_requests),
              static_cast<unsigned long>(s.shm_requests),
              static_cast<unsigned long>(s.rdma_retries));
  std::fflush(stdout);
}

std::vector<RdmaPathStats> PathsTo(const ClientStats& s, const std::string& address) {
  std::vector<RdmaPathStats> out;
  for (const RdmaPathStats& p : s.rdma_paths) {
    if (p.node_address == address) out.push_back(p);
  }
  return out;
}

std::optional<RdmaPathStats> PathOver(const ClientStats& s, const std::string& address,
                                      const std::string& local_port) {
  for (const RdmaPathStats& p : s.rdma_paths) {
    if (p.node_address == address && p.local_port == local_port) return p;
  }
  return std::nullopt;
}

// mesh-cable CABLE down|up: both ends of the cable at once; returns its exit status.
int SwitchCable(const std::string& cable, const std::string& state) {
  std::string command = absl::StrCat(UNIPOOL_MESH_CABLE, " ", cable, " ", state);
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The pool of the mesh: every machine's node up and showing its RDMA ports.
class MeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("UNIPOOL_MESH_MACHINE").empty()) {
      GTEST_SKIP() << "not inside a mesh: run through tests/rdma_vm/mesh-pool.sh (ctest does)";
    }
    me_ = Env("UNIPOOL_MESH_MACHINE");
    directory_ = Env("UNIPOOL_MESH_DIRECTORY");
    ASSERT_FALSE(directory_.empty()) << "UNIPOOL_MESH_DIRECTORY unset (mesh-pool.sh sets it)";
    machines_ = Words(Env("UNIPOOL_MESH_MACHINES"));
    ClientOptions options;
    options.directory = directory_;
    options.name = "mesh-admin";
    options.rdma = RdmaPolicy::kOff;
    // The directory starts in parallel with this program.
    absl::Status last;
    bool answered = WaitUntil(
        [&] {
          auto admin = Admin::Connect(options);
          if (!admin.ok()) {
            last = admin.status();
            return false;
          }
          admin_ = *std::move(admin);
          return true;
        },
        absl::Seconds(90), absl::Milliseconds(250));
    ASSERT_TRUE(answered) << "the directory at " << directory_ << " did not answer: " << last;
    // Nodes start in parallel with this program, each in its own VM under TCG.
    bool ready = WaitUntil(
        [&] {
          absl::StatusOr<PoolState> state = admin_->State();
          if (!state.ok()) return false;
          for (const std::string& m : machines_) {
            const NodeState* n = Find(*state, m);
            if (n == nullptr || !n->up || n->rdma_ports.empty()) return false;
          }
          pool_ = *std::move(state);
          return true;
        },
        absl::Seconds(120), absl::Milliseconds(250));
    ASSERT_TRUE(ready) << "the nodes of " << absl::StrJoin(machines_, ", ")
                       << " did not all come up with RDMA ports within 120 s";
  }

  static const NodeState* Find(const PoolState& state, const std::string& name) {
    for (const NodeState& n : state.nodes) {
      if (n.name == name) return &n;
    }
    return nullptr;
  }

  // Machine m's node's data address, as the directory hands it to clients.
  std::string AddressOf(const std::string& m) const {
    const NodeState* n = Find(pool_, m);
    return n == nullptr ? "" : n->data_address;
  }

  // What mesh-pool.sh has machine m advertise: its addresses on the cables to this machine,
  // then its Ethernet address.
  std::string ExpectedAddress(const std::string& m) const {
    std::vector<std::string> addresses;
    for (const std::string& ip : Words(Env("UNIPOOL_MESH_PEER_" + m))) {
      addresses.push_back(absl::StrCat(ip, ":", kNodePort));
    }
    std::string eth = Env("UNIPOOL_MESH_ETH_" + m);
    if (!eth.empty()) addresses.push_back(absl::StrCat(eth, ":", kNodePort));
    return absl::StrJoin(addresses, ",");
  }

  std::unique_ptr<Client> Connect(RdmaPolicy policy, const std::string& name,
                                  std::vector<std::string> devices = {}) {
    ClientOptions options;
    options.directory = directory_;
    options.name = name;
    options.rdma = policy;
    options.rdma_devices = std::move(devices);
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Every machine's node shows the directory one port per cable of its machine, active, with
  // the cable's IPv4-mapped GID and a /30 subnet.
  void ExpectPortsOfEveryNode() {
    for (const std::string& m : machines_) {
      SCOPED_TRACE("node " + m);
      const NodeState* n = Find(pool_, m);
      ASSERT_NE(n, nullptr);
      std::map<std::string, std::string> want;  // device -> GID
      for (const Cable& c : MeshCables()) {
        if (c.x == m) want["rxe_" + c.name] = Gid(c.number, 1);
        if (c.y == m) want["rxe_" + c.name] = Gid(c.number, 2);
      }
      std::map<std::string, std::string> got;
      for (const RdmaPortInfo& p : n->rdma_ports) {
        got[p.device] = FormatGid(p.gid);
        EXPECT_EQ(p.port, 1) << p.device;
        EXPECT_TRUE(p.active) << p.device;
        EXPECT_EQ(p.ipv4_prefix, 30) << p.device;
        std::printf("mesh: node %s port %s %s on %s, mtu %d, rc %d, %u Mbit/s\n", m.c_str(),
                    PortName(p).c_str(), FormatGid(p.gid).c_str(), SubnetText(p).c_str(),
                    MtuEnumBytes(p.mtu), p.rc, p.rate_mbps);
      }
      EXPECT_EQ(got, want);
    }
    std::fflush(stdout);
  }

  std::string me_, directory_;
  std::vector<std::string> machines_;
  std::unique_ptr<Admin> admin_;
  PoolState pool_;
};

// FullMesh: three machines, one cable between each pair.
class FullMesh : public MeshTest {
 protected:
  void SetUp() override {
    std::vector<Cable> cables = MeshCables();
    std::set<std::string> pairs;
    for (const Cable& c : cables) pairs.insert(c.x + c.y);
    std::vector<std::string> machines = Words(Env("UNIPOOL_MESH_MACHINES"));
    if (!Env("UNIPOOL_MESH_MACHINE").empty() &&
        (machines.size() != 3 || cables.size() != 3 || pairs.size() != 3)) {
      GTEST_SKIP() << "needs a full mesh of three machines, not cables "
                   << Env("UNIPOOL_MESH_CABLES");
    }
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const std::string& m : machines_) {
      if (m != me_) peers_.push_back(m);
    }
  }

  std::vector<std::string> peers_;  // the machines with a node and no client
};

TEST_F(FullMesh, EveryNodeShowsItsCables) {
  ExpectPortsOfEveryNode();
  for (const std::string& p : peers_) {
    EXPECT_EQ(AddressOf(p), ExpectedAddress(p)) << "node " << p << "'s advertised addresses";
  }
}

// rxe under TCG now and then fails an RC transfer ("remote invalid request error") when a VM
// stalls past the queue pair's retransmission timeout or a link flaps, and the client rightly
// takes the path out of use and moves the transfer on (to another path or TCP). A round of
// transfers that saw such a failure says nothing about which cable carries what; it is run
// again (with a new client) up to this many times in all. Its bytes are checked regardless.
constexpr int kRounds = 2;

// Whether to run a round again: some path failed and rounds are left (said on stdout).
bool RoundAgain(const ClientStats& s, int round) {
  std::vector<std::string> failed;
  for (const RdmaPathStats& p : s.rdma_paths) {
    if (p.errors > 0) failed.push_back(Describe(p));
  }
  if (failed.empty() || round >= kRounds) return false;
  std::printf(
      "mesh: note: round %d saw a path fail, so its counters do not tell where the bytes "
      "went; running it again: %s\n",
      round, absl::StrJoin(failed, "; ").c_str());
  std::fflush(stdout);
  return true;
}

// Pages of 64-256 KiB to every node, RC and UC: each remote node's bytes go over the cable
// that joins it to this machine, found by the client alone; nothing goes over TCP.
TEST_F(FullMesh, PagesTakeTheirOwnCable) {
  for (RdmaPolicy policy : {RdmaPolicy::kRC, RdmaPolicy::kUC}) {
    const std::string mode = policy == RdmaPolicy::kRC ? "rdma-rc" : "rdma-uc";
    for (int round = 1;; ++round) {
      SCOPED_TRACE(absl::StrFormat("%s, round %d", mode, round));
      std::unique_ptr<Client> client = Connect(policy, "mesh-" + mode);
      ASSERT_NE(client, nullptr);
      std::vector<std::string> keys;
      std::vector<std::vector<uint8_t>> pages;
      for (int i = 0; i < 48; ++i) {
        keys.push_back(absl::StrFormat("own-cable/%s/%d/%d", mode, round, i));
        pages.push_back(PageBytes(keys.back(), PageSize(i + 100, 64 << 10, 256 << 10)));
      }
      std::vector<absl::Status> put = client->BatchPut(keys, pages);
      for (size_t i = 0; i < put.size(); ++i) {
        ASSERT_TRUE(put[i].ok()) << keys[i] << ": " << put[i];
      }
      std::vector<std::vector<uint8_t>> into(keys.size(), std::vector<uint8_t>(256 << 10, 0));
      std::vector<absl::StatusOr<size_t>> got = client->BatchGet(keys, into);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(got[i].ok()) << keys[i] << ": " << got[i].status();
        ASSERT_EQ(*got[i], pages[i].size()) << keys[i];
        EXPECT_TRUE(std::equal(pages[i].begin(), pages[i].end(), into[i].begin())) << keys[i];
      }

      ClientStats s = client->stats();
      PrintPaths(mode, s);
      EXPECT_TRUE(s.tcp_fallbacks.empty()) << "a node is reached over TCP only";
      // Every path to a remote node joins the two ends of the cable between it and us.
      for (const std::string& p : peers_) {
        std::string cable_port = Env("UNIPOOL_MESH_DEVICE_" + p) + ":1";  // same name both ends
        std::vector<RdmaPathStats> paths = PathsTo(s, AddressOf(p));
        ASSERT_FALSE(paths.empty()) << "no RDMA path to node " << p << " at " << AddressOf(p);
        for (const RdmaPathStats& path : paths) {
          EXPECT_EQ(path.local_port, cable_port)
              << "a path to node " << p << " over another cable: " << Describe(path);
          EXPECT_EQ(path.remote_port, cable_port)
              << "a path to node " << p << " to another cable: " << Describe(path);
          EXPECT_EQ(path.mode, mode) << Describe(path);
        }
      }
      if (RoundAgain(s, round)) continue;
      EXPECT_EQ(s.tcp_requests, 0u) << "node requests went over TCP";
      for (const std::string& p : peers_) {
        std::string cable_port = Env("UNIPOOL_MESH_DEVICE_" + p) + ":1";
        std::optional<RdmaPathStats> path = PathOver(s, AddressOf(p), cable_port);
        EXPECT_TRUE(path && path->up && path->bytes > 0)
            << "no byte went over " << cable_port << " to node " << p;
      }
      break;
    }
  }
}

// The engine's calls from several threads, every byte checked, the longest call timed.
class Workload {
 public:
  // The longest stall, the longest call per phase, and the counts.
  void PrintSummary() {
    std::printf("mesh: longest stall %s\n", LongestStall().c_str());
    for (const std::string& line : PhaseStalls()) {
      std::printf("mesh: longest call %s\n", line.c_str());
    }
    std::printf("mesh: %lu workload steps, %lu calls, %lu failed, %lu wrong bytes\n",
                static_cast<unsigned long>(iterations()), static_cast<unsigned long>(calls()),
                static_cast<unsigned long>(failures()), static_cast<unsigned long>(wrong_bytes()));
  }

  Workload(Client& client, int threads, const std::string& first_phase)
      : client_(client), start_(absl::Now()) {
    phases_.push_back({first_phase, start_});
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  ~Workload() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  uint64_t iterations() const { return iterations_.load(); }
  uint64_t calls() const { return calls_.load(); }
  uint64_t failures() const { return failures_.load(); }
  uint64_t wrong_bytes() const { return wrong_bytes_.load(); }

  // Starts a phase of the run ("cable out"): each call's time counts in the phase it started
  // in. The first phase, from the start, is named by the constructor's caller.
  void Phase(const std::string& name) {
    absl::MutexLock lock(&mu_);
    phases_.push_back({name, absl::Now()});
  }

  // The longest call of the run: "8.5s (thread 1 step 4 BatchPut, started 18.1 s into the run,
  // 7.4 s into phase 'cable out')".
  std::string LongestStall() const {
    absl::MutexLock lock(&mu_);
    const PhaseStats* worst = &phases_.front();
    for (const PhaseStats& p : phases_) {
      if (p.longest > worst->longest) worst = &p;
    }
    return Describe(*worst);
  }

  // One line per phase: its longest call.
  std::vector<std::string> PhaseStalls() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const PhaseStats& p : phases_) out.push_back(p.name + ": " + Describe(p));
    return out;
  }

  std::vector<std::string> Errors() const {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  void Failed(const std::string& what) {
    failures_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    if (errors_.size() < 20) {
      errors_.push_back(
          absl::StrFormat("%.1f s: %s", absl::ToDoubleSeconds(absl::Now() - start_), what));
    }
  }

  struct PhaseStats {
    std::string name;
    absl::Time start;
    absl::Duration longest;
    absl::Time longest_at;
    std::string longest_what = "no call";
  };

  std::string Describe(const PhaseStats& p) const {
    return absl::StrFormat("%s (%s, started %.1f s into the run, %.1f s into phase '%s')",
                           absl::FormatDuration(p.longest), p.longest_what,
                           absl::ToDoubleSeconds(p.longest_at - start_),
                           absl::ToDoubleSeconds(p.longest_at - p.start), p.name);
  }

  // Runs `call` and keeps its duration if it is the longest of the phase it started in.
  template <typename F>
  auto Timed(const std::string& what, F call) {
    absl::Time begin = absl::Now();
    size_t phase;
    {
      absl::MutexLock lock(&mu_);
      phase = phases_.size() - 1;
    }
    auto result = call();
    absl::Duration took = absl::Now() - begin;
    calls_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    PhaseStats& p = phases_[phase];
    if (took > p.longest) {
      p.longest = took;
      p.longest_at = begin;
      p.longest_what = what;
    }
    return result;
  }

  void Check(const std::string& key, const std::vector<uint8_t>& want, const uint8_t* got) {
    uint64_t wrong = 0;
    for (size_t i = 0; i < want.size(); ++i) wrong += want[i] != got[i];
    if (wrong > 0) {
      wrong_bytes_.fetch_add(wrong);
      Failed(absl::StrFormat("%s: %u wrong bytes", key, wrong));
    }
  }

  // One engine step: a chain of pages put, its cached prefix looked up and read, the pages read
  // again, and dropped (so the pool never fills).
  void Run(int t) {
    constexpr int kPages = 6;
    // GetPrefix's buffers (the chain has two absent keys at its end), then BatchGet's.
    std::vector<std::vector<uint8_t>> prefix_into(kPages + 2, std::vector<uint8_t>(256 << 10));
    std::vector<std::vector<uint8_t>> into(kPages, std::vector<uint8_t>(256 << 10));
    for (uint64_t iter = 0; !stop_.load(); ++iter) {
      std::vector<std::string> keys, chain;
      std::vector<std::vector<uint8_t>> pages;
      for (int j = 0; j < kPages; ++j) {
        keys.push_back(absl::StrFormat("workload/t%d/%u/%d", t, iter, j));
        pages.push_back(PageBytes(keys.back(),
                                  PageSize(Mix(t * 1000003 + iter * 31 + j), 64 << 10, 256 << 10)));
      }
      chain = keys;
      chain.push_back(absl::StrFormat("workload/t%d/%u/absent", t, iter));
      chain.push_back(absl::StrFormat("workload/t%d/%u/absent2", t, iter));
      std::string step = absl::StrFormat("thread %d step %u", t, iter);

      std::vector<absl::Status> put =
          Timed(step + " BatchPut", [&] { return client_.BatchPut(keys, pages); });
      bool all_put = true;
      for (size_t i = 0; i < put.size(); ++i) {
        if (!put[i].ok()) {
          Failed(absl::StrFormat("%s BatchPut %s: %s", step, keys[i], put[i].ToString()));
          all_put = false;
        }
      }
      if (all_put) {
        absl::StatusOr<size_t> prefix =
            Timed(step + " GetPrefix", [&] { return client_.GetPrefix(chain, prefix_into); });
        if (!prefix.ok()) {
          Failed(absl::StrFormat("%s GetPrefix: %s", step, prefix.status().ToString()));
        } else if (*prefix != keys.size()) {
          Failed(absl::StrFormat("%s GetPrefix: %u of %u pages", step, *prefix, keys.size()));
        } else {
          for (size_t i = 0; i < keys.size(); ++i) Check(keys[i], pages[i], prefix_into[i].data());
        }
        for (auto& buffer : prefix_into) std::fill(buffer.begin(), buffer.end(), 0);
        std::vector<absl::StatusOr<size_t>> got =
            Timed(step + " BatchGet", [&] { return client_.BatchGet(keys, into); });
        for (size_t i = 0; i < got.size(); ++i) {
          if (!got[i].ok()) {
            Failed(
                absl::StrFormat("%s BatchGet %s: %s", step, keys[i], got[i].status().ToString()));
          } else if (*got[i] != pages[i].size()) {
            Failed(absl::StrFormat("%s BatchGet %s: %u bytes, not %u", step, keys[i], *got[i],
                                   pages[i].size()));
          } else {
            Check(keys[i], pages[i], into[i].data());
          }
        }
        for (auto& buffer : into) std::fill(buffer.begin(), buffer.end(), 0);
      }
      std::vector<std::string_view> views(keys.begin(), keys.end());
      std::vector<absl::Status> removed =
          Timed(step + " BatchRemove", [&] { return client_.BatchRemove(views); });
      for (size_t i = 0; i < removed.size(); ++i) {
        if (!removed[i].ok() && !(removed[i].code() == absl::StatusCode::kNotFound && !all_put)) {
          Failed(absl::StrFormat("%s BatchRemove %s: %s", step, keys[i], removed[i].ToString()));
        }
      }
      iterations_.fetch_add(1);
    }
  }

  Client& client_;
  const absl::Time start_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> iterations_{0}, calls_{0}, failures_{0}, wrong_bytes_{0};
  mutable absl::Mutex mu_;
  std::vector<PhaseStats> phases_ ABSL_GUARDED_BY(mu_);  // never empty
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// Fills the pool as a serving pool is: puts 1 MiB pages until the directory evicts (used
// past its high watermark). Returns the state then; the pages stay, to be evicted by the
// workload's puts.
absl::StatusOr<PoolState> FillPool(Client& client, Admin& admin) {
  constexpr int kBatch = 8;
  constexpr size_t kPage = 1 << 20;
  for (int call = 0;; ++call) {
    absl::StatusOr<PoolState> state = admin.State();
    if (!state.ok()) return state.status();
    if (state->evictions > 0) return state;
    if (static_cast<uint64_t>(call) * kBatch * kPage > 2 * state->capacity) {
      return absl::InternalError(absl::StrFormat(
          "the pool did not evict after %d MiB of puts (capacity %u MiB, used %u MiB)",
          call * kBatch, state->capacity >> 20, state->used >> 20));
    }
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> pages;
    for (int i = 0; i < kBatch; ++i) {
      keys.push_back(absl::StrFormat("fill/%d/%d", call, i));
      pages.push_back(PageBytes(keys.back(), kPage));
    }
    std::vector<std::string_view> key_views(keys.begin(), keys.end());
    std::vector<std::span<const uint8_t>> values(pages.begin(), pages.end());
    for (const absl::Status& s : client.BatchPut(key_views, values)) {
      if (!s.ok()) return s;
    }
  }
}

// Cable a-b pulled out in the middle of an engine's work, then plugged back in, with the pool
// full (evicting, as a serving pool is). The client (default options, as an engine has) must
// hide it: b's share moves to TCP over the Ethernet within the calls that hit the pull, no node
// is marked down, and once the cable is back its path is probed again and carries b's pages.
TEST_F(FullMesh, PulledCableDuringWorkload) {
  const std::string b = peers_.front();
  const std::string address = AddressOf(b);
  const std::string device = Env("UNIPOOL_MESH_DEVICE_" + b);  // rxe_ab
  const std::string cable_port = device + ":1";
  std::unique_ptr<Client> client = Connect(RdmaPolicy::kAuto, "mesh-engine");
  ASSERT_NE(client, nullptr);

  // Whether any node was ever seen down or suspect while the test watched the pool.
  std::string node_trouble;
  auto watch_nodes = [&] {
    absl::StatusOr<PoolState> state = admin_->State();
    if (!state.ok()) return;
    for (const NodeState& n : state->nodes) {
      if ((!n.up || n.suspect) && node_trouble.empty()) {
        node_trouble = absl::StrFormat("node %s was %s", n.name, n.up ? "suspect" : "down");
      }
    }
  };

  absl::Time fill_start = absl::Now();
  absl::StatusOr<PoolState> full = FillPool(*client, *admin_);
  ASSERT_TRUE(full.ok()) << full.status();
  std::printf("mesh: pool full in %.1f s: %lu of %lu MiB used, %lu evictions so far\n",
              absl::ToDoubleSeconds(absl::Now() - fill_start),
              static_cast<unsigned long>(full->used >> 20),
              static_cast<unsigned long>(full->capacity >> 20),
              static_cast<unsigned long>(full->evictions));

  Workload workload(*client, 4, "before the pull (first contact: paths found and probed)");
  auto path = [&](const ClientStats& s) { return PathOver(s, address, cable_port); };
  ClientStats s;
  bool warm = WaitUntil(
      [&] {
        s = client->stats();
        std::optional<RdmaPathStats> p = path(s);
        return p && p->up && p->bytes > 0 && workload.iterations() >= 8;
      },
      absl::Seconds(90), absl::Milliseconds(200));
  PrintPaths("before the pull", s);
  ASSERT_TRUE(warm) << "the workload did not use " << cable_port << " to node " << b;
  const ClientStats before = s;
  const uint64_t errors_before = path(before)->errors;

  // Pull the cable out (both ends), and keep working for a while without it.
  absl::Time pulled = absl::Now();
  workload.Phase("cable out");
  std::printf("mesh: pulling cable %s at %s\n", device.c_str(), Clock().c_str());
  ASSERT_EQ(SwitchCable(device, "down"), 0);
  std::printf("mesh: cable %s out (port DOWN here) at %s\n", device.c_str(), Clock().c_str());
  const uint64_t iterations_at_pull = workload.iterations();
  bool saw_down = false;
  bool out_for_a_while = WaitUntil(
      [&] {
        watch_nodes();
        s = client->stats();
        std::optional<RdmaPathStats> p = path(s);
        // Out of use while its port is down (no probe until it is active again).
        if (p && !p->up) saw_down = true;
        // The other nodes' cables carry their pages meanwhile (checked below). Waited for: with
        // the pull noticed at once (port events), 8 steps may place nothing on them.
        bool others_moved = true;
        for (const std::string& other : peers_) {
          if (other == b) continue;
          std::string port = Env("UNIPOOL_MESH_DEVICE_" + other) + ":1";
          uint64_t was = PathOver(before, AddressOf(other), port).value_or(RdmaPathStats{}).bytes;
          uint64_t now = PathOver(s, AddressOf(other), port).value_or(RdmaPathStats{}).bytes;
          others_moved = others_moved && now > was;
        }
        return saw_down && others_moved && s.tcp_requests > before.tcp_requests &&
               workload.iterations() >= iterations_at_pull + 8 &&
               absl::Now() - pulled >= absl::Seconds(3);
      },
      absl::Seconds(90), absl::Milliseconds(200));
  const ClientStats during = s;
  PrintPaths("cable out", during);
  std::printf("mesh: cable %s out for %.1f s, %lu workload steps meanwhile\n", device.c_str(),
              absl::ToDoubleSeconds(absl::Now() - pulled),
              static_cast<unsigned long>(workload.iterations() - iterations_at_pull));

  // Plug it back in: the path is probed again (after its backoff) and carries bytes.
  workload.Phase("cable plugged in again");
  std::printf("mesh: plugging cable %s in at %s\n", device.c_str(), Clock().c_str());
  absl::Time plugged = absl::Now();
  ASSERT_EQ(SwitchCable(device, "up"), 0);
  std::printf("mesh: cable %s in (port ACTIVE here) at %s\n", device.c_str(), Clock().c_str());
  const uint64_t bytes_at_plug = path(client->stats()).value_or(RdmaPathStats{}).bytes;
  bool back = WaitUntil(
      [&] {
        watch_nodes();
        s = client->stats();
        std::optional<RdmaPathStats> p = path(s);
        return p && p->up && p->bytes > bytes_at_plug;
      },
      absl::Seconds(90), absl::Milliseconds(200));
  std::printf("mesh: RDMA over %s %s %.1f s after the cable was plugged in\n", cable_port.c_str(),
              back ? "carried bytes again" : "did NOT carry bytes again",
              absl::ToDoubleSeconds(absl::Now() - plugged));
  workload.Stop();
  s = client->stats();
  PrintPaths("after", s);

  workload.PrintSummary();
  if (absl::StatusOr<PoolState> end = admin_->State(); end.ok()) {
    std::printf("mesh: pool at the end: %lu of %lu MiB used, %lu evictions during the run\n",
                static_cast<unsigned long>(end->used >> 20),
                static_cast<unsigned long>(end->capacity >> 20),
                static_cast<unsigned long>(end->evictions - full->evictions));
  }
  std::fflush(stdout);
  for (const std::string& e : workload.Errors()) ADD_FAILURE() << e;
  EXPECT_EQ(workload.failures(), 0u);
  EXPECT_EQ(workload.wrong_bytes(), 0u);
  EXPECT_TRUE(out_for_a_while) << "with the cable out: path seen down " << saw_down
                               << ", TCP requests " << before.tcp_requests << " -> "
                               << during.tcp_requests;
  EXPECT_TRUE(saw_down) << "the path over " << cable_port << " was never taken out of use";
  EXPECT_GT(path(during).value_or(RdmaPathStats{}).errors, errors_before)
      << "no failure counted on " << cable_port;
  EXPECT_GT(during.tcp_requests, before.tcp_requests) << "nothing moved to TCP over the Ethernet";
  EXPECT_TRUE(back) << "RDMA over " << cable_port << " did not come back";
  EXPECT_EQ(node_trouble, "") << "a lost cable is a lost path, never a lost node";
  // The other cable's path kept carrying its node's pages, and is up.
  for (const std::string& p : peers_) {
    if (p == b) continue;
    std::string port = Env("UNIPOOL_MESH_DEVICE_" + p) + ":1";
    std::optional<RdmaPathStats> was = PathOver(before, AddressOf(p), port);
    std::optional<RdmaPathStats> out = PathOver(during, AddressOf(p), port);
    std::optional<RdmaPathStats> now = PathOver(s, AddressOf(p), port);
    ASSERT_TRUE(was && out && now) << "no path over " << port << " to node " << p;
    EXPECT_GT(out->bytes, was->bytes)
        << "node " << p << "'s cable idle while " << device << " was out: " << Describe(*out);
    EXPECT_TRUE(now->up) << Describe(*now);
    if (now->errors > 0) {
      std::printf("mesh: note: the path to node %s failed %lu time(s) meanwhile: %s\n", p.c_str(),
                  static_cast<unsigned long>(now->errors), Describe(*now).c_str());
    }
  }
}

// EXPERIMENT, not in CTest (run with --gtest_also_run_disabled_tests): a TCP-only client
// (RdmaPolicy::kOff) under the same workload while cable a-b is pulled: its connections to b run
// over the cable's address, the first one b advertises. Seen: new connections reach b over the
// Ethernet after one 3 s connect timeout, but a call whose request was in flight on a
// connection over the cable waits until the cable is back or the client's io_timeout (30 s)
// ends it: 20.5 s here. No call failed, because the cable was back within 30 s.
TEST_F(FullMesh, DISABLED_PulledCableTcpClient) {
  const std::string b = peers_.front();
  const std::string device = Env("UNIPOOL_MESH_DEVICE_" + b);
  std::unique_ptr<Client> client = Connect(RdmaPolicy::kOff, "mesh-tcp-engine");
  ASSERT_NE(client, nullptr);
  Workload workload(*client, 4, "before the pull");
  ASSERT_TRUE(WaitUntil([&] { return workload.iterations() >= 8; }, absl::Seconds(90)));
  workload.Phase("cable out");
  std::printf("mesh: pulling cable %s at %s\n", device.c_str(), Clock().c_str());
  ASSERT_EQ(SwitchCable(device, "down"), 0);
  std::printf("mesh: cable %s out (port DOWN here) at %s\n", device.c_str(), Clock().c_str());
  const uint64_t at_pull = workload.iterations();
  bool went_on = WaitUntil([&] { return workload.iterations() >= at_pull + 8; }, absl::Seconds(90),
                           absl::Milliseconds(200));
  std::printf("mesh: %s: %lu steps with the cable out, at %s\n", went_on ? "went on" : "STUCK",
              static_cast<unsigned long>(workload.iterations() - at_pull), Clock().c_str());
  workload.Phase("cable plugged in again");
  ASSERT_EQ(SwitchCable(device, "up"), 0);
  const uint64_t at_plug = workload.iterations();
  EXPECT_TRUE(WaitUntil([&] { return workload.iterations() >= at_plug + 4; }, absl::Seconds(90)));
  workload.Stop();
  workload.PrintSummary();
  for (const std::string& e : workload.Errors()) ADD_FAILURE() << e;
  EXPECT_TRUE(went_on);
}

// Has machine m run `request` (mesh-pool.sh's request files in the shared --out directory:
// "readdress NETDEV OLD NEW") and waits for its answer.
absl::Status AskMachine(const std::string& m, const std::string& request) {
  static int count = 0;
  std::string base = absl::StrFormat("%s/requests/%s.%d-%d", Env("UNIPOOL_MESH_OUT"), m,
                                     static_cast<int>(getpid()), ++count);
  {
    // Written aside, then renamed: the machine never reads half a request.
    std::FILE* f = std::fopen((base + ".tmp").c_str(), "w");
    if (f == nullptr) return absl::InternalError("cannot write " + base + ".tmp");
    std::fprintf(f, "%s\n", request.c_str());
    std::fclose(f);
    if (std::rename((base + ".tmp").c_str(), (base + ".req").c_str()) != 0) {
      return absl::InternalError("cannot rename to " + base + ".req");
    }
  }
  std::string answer;
  bool answered = WaitUntil(
      [&] {
        std::FILE* f = std::fopen((base + ".done").c_str(), "r");
        if (f == nullptr) return false;
        char line[512] = {};
        bool got = std::fgets(line, sizeof(line), f) != nullptr;
        std::fclose(f);
        answer = line;
        return got;
      },
      absl::Seconds(30), absl::Milliseconds(100));
  if (!answered) return absl::DeadlineExceededError(m + " did not answer '" + request + "'");
  return absl::StartsWith(answer, "ok") ? absl::OkStatus() : absl::InternalError(m + ": " + answer);
}

// Cable a-b's link comes back with other addresses at both ends, as a replugged Thunderbolt
// cable may (new link-local IPv4s), so both ends' GIDs change. Node b tells the directory its
// port's new GID, and a client that used the cable before plans its path to b again and moves
// b's pages over RDMA on that cable once more; no call fails meanwhile. The last case of the
// boot: the cable keeps its new addresses.
TEST_F(FullMesh, ReaddressedCableCarriesRdmaAgain) {
  const std::string b = peers_.front();
  const std::string address = AddressOf(b);
  const std::string device = Env("UNIPOOL_MESH_DEVICE_" + b);  // rxe_ab
  const std::string cable_port = device + ":1";
  const std::string netdev = "eth_" + device.substr(device.find('_') + 1);
  int number = 0;
  for (const Cable& c : MeshCables()) {
    if ("rxe_" + c.name == device) number = c.number;
  }
  ASSERT_GT(number, 0) << "no cable named " << device;
  std::unique_ptr<Client> client = Connect(RdmaPolicy::kRC, "mesh-readdress");
  ASSERT_NE(client, nullptr);

  // One round: pages put and read back, every call ok and every byte checked; true when the
  // path over the cable to b is up and carried bytes in the round (its counters start again
  // from 0 when the path is planned again, so "changed" is the test).
  int round = 0;
  auto round_over_cable = [&] {
    uint64_t before =
        PathOver(client->stats(), address, cable_port).value_or(RdmaPathStats{}).bytes;
    std::vector<std::string> keys;
    std::vector<std::vector<uint8_t>> pages;
    ++round;
    for (int i = 0; i < 12; ++i) {
      keys.push_back(absl::StrFormat("readdress/%d/%d", round, i));
      pages.push_back(PageBytes(keys.back(), 64 << 10));
    }
    std::vector<absl::Status> put = client->BatchPut(keys, pages);
    std::vector<std::vector<uint8_t>> into(keys.size(), std::vector<uint8_t>(64 << 10, 0));
    std::vector<absl::StatusOr<size_t>> got = client->BatchGet(keys, into);
    for (size_t i = 0; i < keys.size(); ++i) {
      EXPECT_TRUE(put[i].ok()) << keys[i] << ": " << put[i];
      EXPECT_TRUE(got[i].ok() && *got[i] == pages[i].size() && into[i] == pages[i])
          << keys[i] << ": " << got[i].status();
    }
    std::optional<RdmaPathStats> p = PathOver(client->stats(), address, cable_port);
    return p && p->up && p->bytes > 0 && p->bytes != before;
  };
  bool before = WaitUntil(round_over_cable, absl::Seconds(60), absl::Milliseconds(100));
  PrintPaths("before the new addresses", client->stats());
  ASSERT_TRUE(before) << "b's pages never went over " << cable_port;
  ASSERT_FALSE(HasFailure());

  // b's end first, then ours: the new GIDs are on the new subnet 10.77.(100+k).0/30.
  const std::string old_b = absl::StrFormat("10.77.%d.2/30", number);
  const std::string new_b = absl::StrFormat("10.77.%d.2/30", 100 + number);
  const std::string old_a = absl::StrFormat("10.77.%d.1/30", number);
  const std::string new_a = absl::StrFormat("10.77.%d.1/30", 100 + number);
  absl::Time changed = absl::Now();
  std::printf("mesh: cable %s readdressed at %s: %s -> %s, %s -> %s\n", device.c_str(),
              Clock().c_str(), old_a.c_str(), new_a.c_str(), old_b.c_str(), new_b.c_str());
  ASSERT_TRUE(AskMachine(b, absl::StrCat("readdress ", netdev, " ", old_b, " ", new_b)).ok());
  std::string here = absl::StrCat("ip addr del ", old_a, " dev ", netdev, " && ip addr add ", new_a,
                                  " dev ", netdev);
  ASSERT_EQ(std::system(here.c_str()), 0) << here;

  // Node b re-registers the port with its new GID.
  const std::string new_gid = Gid(100 + number, 2);
  bool registered = WaitUntil(
      [&] {
        absl::StatusOr<PoolState> state = admin_->State();
        const NodeState* n = state.ok() ? Find(*state, b) : nullptr;
        if (n == nullptr) return false;
        return std::any_of(n->rdma_ports.begin(), n->rdma_ports.end(), [&](const RdmaPortInfo& p) {
          return p.device == device && FormatGid(p.gid) == new_gid && p.active;
        });
      },
      absl::Seconds(30), absl::Milliseconds(100));
  std::printf("mesh: node %s's %s %s %s in the directory %.1f s after the change\n", b.c_str(),
              device.c_str(), registered ? "shows" : "does NOT show", new_gid.c_str(),
              absl::ToDoubleSeconds(absl::Now() - changed));
  EXPECT_TRUE(registered);

  // The same client plans its path again and moves b's pages over the cable.
  bool again = WaitUntil(round_over_cable, absl::Seconds(60), absl::Milliseconds(100));
  std::printf("mesh: RDMA over %s %s %.1f s after the change, %d rounds in all\n",
              cable_port.c_str(), again ? "carried b's pages again" : "did NOT carry bytes again",
              absl::ToDoubleSeconds(absl::Now() - changed), round);
  PrintPaths("after the new addresses", client->stats());
  EXPECT_TRUE(again) << "b's pages never went over " << cable_port << " with its new GIDs";
}

// TwoCables: machines a and b joined by two cables.
class TwoCables : public MeshTest {
 protected:
  void SetUp() override {
    if (!Env("UNIPOOL_MESH_MACHINE").empty()) {
      for (const std::string& m : Words(Env("UNIPOOL_MESH_PEERS"))) {
        if (Words(Env("UNIPOOL_MESH_DEVICE_" + m)).size() >= 2) peer_ = m;
      }
      if (peer_.empty()) {
        GTEST_SKIP() << "needs two cables between this machine and another, not cables "
                     << Env("UNIPOOL_MESH_CABLES");
      }
    }
    MeshTest::SetUp();
  }

  std::string peer_;
};

// One batch to b moves over both cables (each page whole on one of them, shared by what each
// has queued), RC and UC; a single large value is cut over both.
TEST_F(TwoCables, OneBatchUsesBothCables) {
  ExpectPortsOfEveryNode();
  const std::string address = AddressOf(peer_);
  EXPECT_EQ(address, ExpectedAddress(peer_));
  std::vector<std::string> devices = Words(Env("UNIPOOL_MESH_DEVICE_" + peer_));
  std::set<std::string> cable_ports;
  for (const std::string& d : devices) cable_ports.insert(d + ":1");
  for (RdmaPolicy policy : {RdmaPolicy::kRC, RdmaPolicy::kUC}) {
    const std::string mode = policy == RdmaPolicy::kRC ? "rdma-rc" : "rdma-uc";
    for (int round = 1;; ++round) {
      SCOPED_TRACE(absl::StrFormat("%s, round %d", mode, round));
      std::unique_ptr<Client> client = Connect(policy, "mesh-two-" + mode);
      ASSERT_NE(client, nullptr);
      auto bytes_over = [&](const ClientStats& s) {
        std::vector<uint64_t> bytes;
        for (const std::string& d : devices) {
          std::optional<RdmaPathStats> p = PathOver(s, address, d + ":1");
          bytes.push_back(p ? p->bytes : 0);
        }
        return bytes;
      };

      // The first call to b finds its paths (both probed) before it moves any byte.
      std::vector<std::string> keys;
      std::vector<std::vector<uint8_t>> pages;
      for (int i = 0; i < 32; ++i) {
        keys.push_back(absl::StrFormat("two-cables/%s/%d/%d", mode, round, i));
        pages.push_back(PageBytes(keys.back(), 256 << 10));
      }
      std::vector<absl::Status> put = client->BatchPut(keys, pages);
      for (size_t i = 0; i < put.size(); ++i) {
        ASSERT_TRUE(put[i].ok()) << keys[i] << ": " << put[i];
      }
      ClientStats after_put = client->stats();
      PrintPaths(mode + " after one BatchPut", after_put);

      std::vector<std::vector<uint8_t>> into(keys.size(), std::vector<uint8_t>(256 << 10, 0));
      std::vector<absl::StatusOr<size_t>> got = client->BatchGet(keys, into);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(got[i].ok()) << keys[i] << ": " << got[i].status();
        EXPECT_EQ(into[i], pages[i]) << keys[i];
      }
      ClientStats after_get = client->stats();

      // One 8 MiB value with a copy on each node: b's copy is written over both cables.
      std::string big_key = absl::StrFormat("two-cables/%s/%d/big", mode, round);
      std::vector<uint8_t> big = PageBytes(big_key, 8 << 20);
      ASSERT_TRUE(client->Put(big_key, big, {.replicas = 2}).ok());
      ClientStats after_big = client->stats();
      PrintPaths(mode + " after one 8 MiB put", after_big);
      absl::StatusOr<std::vector<uint8_t>> big_back = client->Get(big_key);
      ASSERT_TRUE(big_back.ok()) << big_back.status();
      EXPECT_TRUE(*big_back == big) << big_key;

      // One path per cable, each joining the cable's two ends.
      std::vector<RdmaPathStats> paths = PathsTo(after_big, address);
      std::set<std::string> local_ports;
      for (const RdmaPathStats& p : paths) {
        local_ports.insert(p.local_port);
        EXPECT_EQ(p.local_port, p.remote_port) << Describe(p);
        EXPECT_EQ(p.mode, mode) << Describe(p);
      }
      EXPECT_EQ(paths.size(), devices.size()) << "want one path per cable to node " << peer_;
      EXPECT_EQ(local_ports, cable_ports);
      EXPECT_TRUE(after_big.tcp_fallbacks.empty());
      if (RoundAgain(after_big, round)) continue;

      std::vector<uint64_t> put_bytes = bytes_over(after_put), get_bytes = bytes_over(after_get),
                            big_bytes = bytes_over(after_big);
      for (size_t d = 0; d < devices.size(); ++d) {
        EXPECT_GT(put_bytes[d], 0u) << "the batch put moved nothing over " << devices[d];
        EXPECT_GT(get_bytes[d], put_bytes[d]) << "the batch get moved nothing over " << devices[d];
        EXPECT_GT(big_bytes[d], get_bytes[d]) << "the 8 MiB put moved nothing over " << devices[d];
      }
      for (const RdmaPathStats& p : paths) EXPECT_TRUE(p.up) << Describe(p);
      EXPECT_EQ(after_big.tcp_requests, 0u);
      break;
    }
  }
}

// A benchmark figure, not a timed assertion: batch gets of 32 x 256 KiB from b
// over both cables against the same over one (a client given one device),
// in the same run, printed as "mesh: two cables ...". The bytes are checked.
TEST_F(TwoCables, ThroughputOfTwoCablesAgainstOne) {
  std::vector<std::string> devices = Words(Env("UNIPOOL_MESH_DEVICE_" + peer_));
  std::unique_ptr<Client> writer = Connect(RdmaPolicy::kUC, "mesh-two-writer");
  ASSERT_NE(writer, nullptr);
  std::vector<std::string> keys;
  std::vector<std::vector<uint8_t>> pages;
  for (int i = 0; i < 32; ++i) {
    keys.push_back(absl::StrFormat("two-cables/bench/%d", i));
    pages.push_back(PageBytes(keys.back(), 256 << 10));
  }
  for (const absl::Status& s : writer->BatchPut(keys, pages)) ASSERT_TRUE(s.ok()) << s;
  auto rate = [&](std::vector<std::string> use, const std::string& name) {
    std::unique_ptr<Client> client = Connect(RdmaPolicy::kUC, name, std::move(use));
    EXPECT_NE(client, nullptr);
    if (client == nullptr) return 0.0;
    std::vector<std::vector<uint8_t>> into(keys.size(), std::vector<uint8_t>(256 << 10));
    (void)client->BatchGet(keys, into);  // paths found, buffers faulted in
    constexpr int kRounds = 4;
    absl::Time start = absl::Now();
    for (int r = 0; r < kRounds; ++r) {
      std::vector<absl::StatusOr<size_t>> got = client->BatchGet(keys, into);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(got[i].ok() && into[i] == pages[i]) << keys[i];
      }
    }
    double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return kRounds * 32.0 * (256 << 10) / seconds / 1e6;
  };
  double one = rate({devices[0]}, "mesh-one-cable");
  double two = rate(devices, "mesh-two-cables");
  std::printf(
      "mesh: two cables %.1f MB/s, one cable %.1f MB/s: %.2fx (UC batch get, 32 x 256 KiB)\n", two,
      one, one > 0 ? two / one : 0.0);
}

}  // namespace
}  // namespace unipool::testing
