// A real 1-member etcd (Debian's /usr/bin/etcd) on free loopback ports, with
// its data in a folder of the running test.
// Thread safety: not thread-safe; one test thread drives it.
#ifndef UNIPOOL_TESTS_HA_ETCD_MEMBER_H_
#define UNIPOOL_TESTS_HA_ETCD_MEMBER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "unipool/testing/subprocess.h"

namespace unipool::testing {

class EtcdMember {
 public:
  // Starts etcd with its data and log (etcd.log) under `dir` and waits until
  // it answers. Unavailable when it does not within 30 s.
  static absl::StatusOr<std::unique_ptr<EtcdMember>> Start(const std::string& dir);

  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT
  pid_t pid() const { return process_->pid(); }

 private:
  EtcdMember(std::string url, std::unique_ptr<Background> process)
      : url_(std::move(url)), process_(std::move(process)) {}
  std::string url_;
  std::unique_ptr<Background> process_;  // killed with the member
};

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTS_HA_ETCD_MEMBER_H_
