#include "ha_load.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "unipool/testing/test_pages.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {

// Puts t<thread>-<n> one after another and reads back one of its own
// acknowledged keys after each put.
void Work(Client* client, int thread, Load* load) {
  std::vector<std::string> mine;
  absl::Time last_ok = absl::Now();
  auto progressed = [&] {
    absl::Time now = absl::Now();
    int64_t stall = absl::ToInt64Milliseconds(now - last_ok);
    int64_t seen = load->longest_stall_ms.load();
    while (stall > seen && !load->longest_stall_ms.compare_exchange_weak(seen, stall)) {
    }
    last_ok = now;
    load->done[thread].fetch_add(1);
  };
  for (uint64_t n = 0; !load->stop.load(); ++n) {
    std::string key = absl::StrCat("t", thread, "-", n);
    std::vector<uint8_t> value = PageBytes(key, kValueBytes);
    if (absl::Status s = client->Put(key, value); s.ok()) {
      mine.push_back(key);
      absl::MutexLock lock(&load->mu);
      load->acked.push_back(key);
    } else {
      std::fprintf(stderr, "put %s failed: %s\n", key.c_str(), s.ToString().c_str());
      load->failed_puts.fetch_add(1);
      continue;
    }
    progressed();
    const std::string& old = mine[(n * 7919) % mine.size()];
    absl::StatusOr<std::vector<uint8_t>> got = client->Get(old);
    if (!got.ok()) {
      std::fprintf(stderr, "get %s failed: %s\n", old.c_str(), got.status().ToString().c_str());
      load->failed_gets.fetch_add(1);
    } else if (*got != PageBytes(old, kValueBytes)) {
      load->wrong_gets.fetch_add(1);
    } else {
      progressed();
    }
  }
}

// Waits until every thread did `more` operations more than in `before`.
bool EveryThreadCarriesOn(Load& load, const std::vector<uint64_t>& before, uint64_t more) {
  return WaitUntil(
      [&] {
        for (int t = 0; t < kThreads; ++t) {
          if (load.done[t].load() < before[t] + more) return false;
        }
        return true;
      },
      absl::Seconds(120));
}

std::vector<uint64_t> Snapshot(Load& load) {
  std::vector<uint64_t> done;
  for (int t = 0; t < kThreads; ++t) done.push_back(load.done[t].load());
  return done;
}

size_t AckedCount(Load& load) {
  absl::MutexLock lock(&load.mu);
  return load.acked.size();
}

// Every acknowledged key that reads back wrong or not at all (the first few
// printed).
int CountLost(Client& client, Load& load) {
  std::vector<std::string> acked;
  {
    absl::MutexLock lock(&load.mu);
    acked = load.acked;
  }
  int lost = 0;
  for (const std::string& key : acked) {
    absl::StatusOr<std::vector<uint8_t>> got = client.Get(key);
    if (!got.ok() || *got != PageBytes(key, kValueBytes)) {
      if (++lost <= 5)
        std::fprintf(stderr, "acknowledged %s: %s\n", key.c_str(),
                     got.ok() ? "wrong bytes" : got.status().ToString().c_str());
    }
  }
  return lost;
}

std::vector<std::thread> StartWork(Client* client, Load& load) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(Work, client, t, &load);
  return threads;
}

int FinishLoad(Client& client, Load& load, std::vector<std::thread>& threads,
               const std::string& what) {
  load.stop.store(true);
  for (std::thread& t : threads) t.join();
  int lost = CountLost(client, load);
  std::printf(
      "%s: %zu acknowledged puts, %d lost; failed: %d puts, %d gets; longest stall %.3f s\n",
      what.c_str(), AckedCount(load), lost, load.failed_puts.load(), load.failed_gets.load(),
      load.longest_stall_ms.load() / 1e3);
  return lost;
}

}  // namespace unipool::testing
