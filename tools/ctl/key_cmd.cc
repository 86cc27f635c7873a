// unipoolctl keygen and token create: the pool's cluster key and the tokens
// derived from it (common/include/unipool/common/auth.h).
#include <cstdio>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "ctl.h"
#include "unipool/common/auth.h"

ABSL_DECLARE_FLAG(std::string, prefix);
ABSL_FLAG(std::string, role, "client", "token create: client, node or admin");

namespace unipool::ctl {

int KeygenCommand(Context& ctx) {
  if (ctx.args().size() != 1) return UsageError("keygen PATH");
  auto key = NewClusterKey();
  if (!key.ok()) return Fail(key.status());
  if (absl::Status s = WriteCredentialFile(ctx.args()[0], *key); !s.ok()) return Fail(s);
  std::fprintf(stderr,
               "unipoolctl: wrote a new cluster key to %s (mode 0600). Give it to the directory "
               "and every node (--key-file); clients get it or a token (unipoolctl token "
               "create)\n",
               ctx.args()[0].c_str());
  return kExitOk;
}

int TokenCommand(Context& ctx) {
  constexpr char kUsage[] = "[--key-file KEY] token create --role client|node|admin [--prefix P]";
  if (ctx.args().size() != 1 || ctx.args()[0] != "create") return UsageError(kUsage);
  std::string role_name = absl::GetFlag(FLAGS_role);
  wire::Role role;
  if (role_name == "client") {
    role = wire::Role::Client;
  } else if (role_name == "node") {
    role = wire::Role::Node;
  } else if (role_name == "admin") {
    role = wire::Role::Admin;
  } else {
    return UsageError(kUsage);
  }
  if (role == wire::Role::Node && !absl::GetFlag(FLAGS_prefix).empty()) {
    return BadFlag("--prefix: a node token has no prefix (a node serves every tenant)");
  }
  auto cluster = LoadCredentialFromFlagOrEnv(ctx.key_file());
  if (!cluster.ok()) return Fail(cluster.status());
  if (*cluster == nullptr) {
    return Fail("token create needs the cluster key: --key-file or $UNIPOOL_KEY_FILE");
  }
  auto token = NewToken(**cluster, role, absl::GetFlag(FLAGS_prefix));
  if (!token.ok()) return Fail(token.status());
  // The token on stdout, to be saved in a file only its holder can read.
  std::fputs(FormatCredential(*token).c_str(), stdout);
  return kExitOk;
}

}  // namespace unipool::ctl
