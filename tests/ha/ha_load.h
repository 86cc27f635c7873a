// The load of the replicated-directory tests (tests/ha/): putting and
// reading threads, each putting its own keys one after another and reading
// back one of its acknowledged keys after each put, counting what failed
// and the longest stall any thread saw.
// Thread safety: Load's fields are atomic or under its mutex; the helpers
// are called from the test's thread.
#ifndef UNIPOOL_TESTS_HA_HA_LOAD_H_
#define UNIPOOL_TESTS_HA_HA_LOAD_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "unipool/client.h"

namespace unipool::testing {

constexpr int kThreads = 4;
constexpr size_t kValueBytes = 4096;

// What the putting and reading threads did.
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<int> failed_puts{0}, failed_gets{0}, wrong_gets{0};
  std::atomic<int64_t> longest_stall_ms{0};
  std::atomic<uint64_t> done[kThreads] = {};
  absl::Mutex mu;
  std::vector<std::string> acked ABSL_GUARDED_BY(mu);
};

// Puts t<thread>-<n> one after another and reads back one of its own
// acknowledged keys after each put, until load->stop.
void Work(Client* client, int thread, Load* load);
// Starts kThreads threads of Work on `client`.
std::vector<std::thread> StartWork(Client* client, Load& load);
// Waits (up to 120 s) until every thread did `more` operations more than
// in `before`.
bool EveryThreadCarriesOn(Load& load, const std::vector<uint64_t>& before, uint64_t more);
// Each thread's operations so far.
std::vector<uint64_t> Snapshot(Load& load);
size_t AckedCount(Load& load);
// Every acknowledged key that reads back wrong or not at all (the first few
// printed).
int CountLost(Client& client, Load& load);
// Stops the threads, joins them, prints what they did on one line that
// starts with `what`, and returns CountLost.
int FinishLoad(Client& client, Load& load, std::vector<std::thread>& threads,
               const std::string& what);

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTS_HA_HA_LOAD_H_
