// unipoolctl tls init: a private CA and a server certificate for a pool that
// speaks TLS (common/include/unipool/common/tls_files.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ctl.h"
#include "unipool/common/tls_files.h"

namespace unipool::ctl {

// --hosts as given: an empty value (`--hosts ''`) is told from no flag at
// all, so it is refused rather than silently replaced by the defaults.
struct HostList {
  bool given = false;
  std::vector<std::string> hosts;
};

bool AbslParseFlag(absl::string_view text, HostList* list, std::string*) {
  list->given = true;
  list->hosts = absl::StrSplit(text, ',');
  if (text.empty()) list->hosts.clear();
  return true;
}

std::string AbslUnparseFlag(const HostList& list) { return absl::StrJoin(list.hosts, ","); }

}  // namespace unipool::ctl

ABSL_FLAG(unipool::ctl::HostList, hosts, {},
          "tls init: names and addresses clients dial the servers at (default: this machine's "
          "name, localhost, 127.0.0.1 and ::1)");

namespace unipool::ctl {
namespace {

std::vector<std::string> DefaultHosts() {
  std::vector<std::string> hosts;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') hosts.push_back(name);
  for (const char* host : {"localhost", "127.0.0.1", "::1"}) hosts.push_back(host);
  return hosts;
}

// A host name (letters, digits, '-' and '.') or an IP address (digits,
// hex, '.' and ':'): what a certificate's subject names can hold.
bool PlausibleHost(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ':';
  });
}

}  // namespace

int TlsCommand(Context& ctx) {
  constexpr char kUsage[] = "tls init DIR [--hosts NAME,ADDRESS,...]";
  if (ctx.args().size() != 2 || ctx.args()[0] != "init") return UsageError(kUsage);
  const std::string& dir = ctx.args()[1];
  HostList given = absl::GetFlag(FLAGS_hosts);
  if (given.given && given.hosts.empty()) {
    return BadFlag(
        "--hosts is empty: name at least one host or address (or leave it out for "
        "the defaults)");
  }
  std::vector<std::string> hosts = given.hosts;
  for (const std::string& host : hosts) {
    if (!PlausibleHost(host)) {
      return BadFlag(absl::StrFormat("--hosts: '%s' is not a host name or IP address", host));
    }
  }
  if (hosts.empty()) hosts = DefaultHosts();
  if (absl::Status s = WriteTlsFiles(dir, hosts); !s.ok()) return Fail(s);
  std::fprintf(stderr,
               "unipoolctl: wrote %s/{%s,%s,%s,%s}. Start the directory and every node with "
               "--tls-cert %s/%s --tls-key %s/%s --tls-ca %s/%s; clients need only %s/%s "
               "(--tls-ca or $UNIPOOL_TLS_CA). Keep %s/%s offline\n",
               dir.c_str(), kTlsCaCert, kTlsCaKey, kTlsServerCert, kTlsServerKey, dir.c_str(),
               kTlsServerCert, dir.c_str(), kTlsServerKey, dir.c_str(), kTlsCaCert, dir.c_str(),
               kTlsCaCert, dir.c_str(), kTlsCaKey);
  return kExitOk;
}

}  // namespace unipool::ctl
