#include "etcd_member.h"

#include "absl/strings/str_format.h"
#include "unipool/common/socket.h"
#include "unipool/election/etcd_client.h"
#include "unipool/testing/wait.h"

namespace unipool::testing {
namespace {

// A loopback port free a moment ago (etcd binds it right after).
absl::StatusOr<std::string> FreeLoopbackAddress() {
  std::string bound;
  auto fd = ListenTcp("127.0.0.1:0", &bound);
  if (!fd.ok()) return fd.status();
  return bound;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdMember>> EtcdMember::Start(const std::string& dir) {
  auto client = FreeLoopbackAddress();
  auto peer = FreeLoopbackAddress();
  if (!client.ok() || !peer.ok()) return absl::UnavailableError("no free loopback port");
  std::string url = "http://" + *client, peer_url = "http://" + *peer;
  auto process = std::make_unique<Background>(
      std::vector<std::string>{"/usr/bin/etcd", "--name=m1", "--data-dir=" + dir + "/etcd-data",
                               "--listen-client-urls=" + url, "--advertise-client-urls=" + url,
                               "--listen-peer-urls=" + peer_url,
                               "--initial-advertise-peer-urls=" + peer_url,
                               "--initial-cluster=m1=" + peer_url},
      dir + "/etcd.log");
  auto etcd = EtcdClient::Create({.endpoints = {url}});
  if (!etcd.ok()) return etcd.status();
  bool up = WaitUntil([&] { return (*etcd)->Get("/health-probe").ok(); }, absl::Seconds(30),
                      absl::Milliseconds(50));
  if (!up) {
    return absl::UnavailableError(
        absl::StrFormat("etcd on %s did not answer within 30 s (see %s/etcd.log)", url, dir));
  }
  return std::unique_ptr<EtcdMember>(new EtcdMember(url, std::move(process)));
}

}  // namespace unipool::testing
