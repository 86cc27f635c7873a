// unipoolctl keygen and token create: the pool's cluster key and the tokens
// derived from it (common/include/unipool/common/auth.h).
#include <cstdio>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "ctl.h"
#include "unipool/common/auth.h"
#include "unipool/common/units.h"

ABSL_DECLARE_FLAG(std::string, prefix);
ABSL_FLAG(std::string, role, "client", "token create: client, node or admin");
ABSL_FLAG(std::string, quota, "",
          "token create: the tenant's storage quota in allocated bytes (e.g. 200GiB; default: "
          "the directory's --tenant-storage-quota, unlimited unless set)");
ABSL_FLAG(std::string, pin_quota, "",
          "token create: the tenant's pin quota in allocated bytes (default: the directory's "
          "--tenant-pin-quota, unlimited unless set)");
ABSL_FLAG(std::string, reservation_quota, "",
          "token create: the tenant's uncommitted reservations, in allocated bytes (default: the "
          "directory's --client-reserve-share of the pool)");

namespace unipool::ctl {
namespace {

// A quota flag's bytes (0 when not given); false after printing a bad value.
bool QuotaFlag(const absl::Flag<std::string>& flag, std::string_view name, uint64_t* bytes) {
  std::string text = absl::GetFlag(flag);
  if (text.empty()) return true;
  auto parsed = ParseSize(text);
  if (!parsed.ok()) {
    BadFlag(absl::StrFormat("--%s: %s", name, parsed.status().message()));
    return false;
  }
  *bytes = *parsed;
  return true;
}

}  // namespace

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
  constexpr char kUsage[] =
      "[--key-file KEY] token create --role client|node|admin [--prefix P] [--quota SIZE] "
      "[--pin-quota SIZE] [--reservation-quota SIZE]";
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
  TenantQuota quota;
  if (!QuotaFlag(FLAGS_quota, "quota", &quota.storage_bytes) ||
      !QuotaFlag(FLAGS_pin_quota, "pin-quota", &quota.pin_bytes) ||
      !QuotaFlag(FLAGS_reservation_quota, "reservation-quota", &quota.reservation_bytes)) {
    return kExitUsage;
  }
  if (quota.any() && (role == wire::Role::Node || absl::GetFlag(FLAGS_prefix).empty())) {
    return BadFlag(
        "--quota, --pin-quota, --reservation-quota: quotas belong to a tenant: give "
        "a client or admin token a --prefix");
  }
  auto cluster = LoadCredentialFromFlagOrEnv(ctx.key_file());
  if (!cluster.ok()) return Fail(cluster.status());
  if (*cluster == nullptr) {
    return Fail("token create needs the cluster key: --key-file or $UNIPOOL_KEY_FILE");
  }
  auto token = NewToken(**cluster, role, absl::GetFlag(FLAGS_prefix), quota);
  if (!token.ok()) return Fail(token.status());
  // The token on stdout, to be saved in a file only its holder can read.
  std::fputs(FormatCredential(*token).c_str(), stdout);
  return kExitOk;
}

}  // namespace unipool::ctl
