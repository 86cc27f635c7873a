// unipoolctl pin, unpin, drain, undrain, evict: what stays, what goes, and
// taking a node out of the pool.
#include <cstdio>
#include <thread>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "ctl.h"
#include "output.h"

ABSL_DECLARE_FLAG(std::string, prefix);
ABSL_FLAG(bool, all, false, "evict: evict every unpinned, unleased object");
ABSL_FLAG(std::string, tier, "memory",
          "evict: memory (free memory copies; those on a node's flash stay there), flash (forget "
          "flash copies) or all (remove the objects)");

namespace unipool::ctl {
namespace {

constexpr absl::Duration kDrainPoll = absl::Milliseconds(200);

// KEY or --prefix P (exactly one) for pin and unpin.
bool KeyOrPrefix(Context& ctx, std::string* target, bool* prefix) {
  std::string p = absl::GetFlag(FLAGS_prefix);
  *prefix = !p.empty();
  if (*prefix ? !ctx.args().empty() : ctx.args().size() != 1) return false;
  *target = *prefix ? p : ctx.args()[0];
  return true;
}

int PinOrUnpin(Context& ctx, bool pin) {
  std::string target;
  bool prefix = false;
  const char* verb = pin ? "pin" : "unpin";
  if (!KeyOrPrefix(ctx, &target, &prefix)) {
    return UsageError(absl::StrFormat("%s KEY | %s --prefix PREFIX", verb, verb));
  }
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::Status s = pin ? (*admin)->Pin(target, prefix) : (*admin)->Unpin(target, prefix);
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "%s %s%s\n", pin ? "pinned" : "unpinned",
               prefix ? "every key starting with " : "", target.c_str());
  return kExitOk;
}

// The node named (or addressed) `node` as the directory reports it now.
absl::StatusOr<NodeState> FindNode(Admin& admin, const std::string& node) {
  absl::StatusOr<PoolState> state = admin.State();
  if (!state.ok()) return state.status();
  for (NodeState& n : state->nodes) {
    if (n.name == node || n.data_address == node) return std::move(n);
  }
  return absl::NotFoundError(absl::StrFormat("no node named %s", node));
}

}  // namespace

int PinCommand(Context& ctx) { return PinOrUnpin(ctx, /*pin=*/true); }
int UnpinCommand(Context& ctx) { return PinOrUnpin(ctx, /*pin=*/false); }

int DrainCommand(Context& ctx) {
  if (ctx.args().size() != 1) return UsageError("drain NODE");
  const std::string& node = ctx.args()[0];
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::StatusOr<NodeState> before = FindNode(**admin, node);
  if (!before.ok()) return Fail(before.status());
  // Drain returns when the node is empty; meanwhile the bar follows the
  // objects left on the node as the directory reports them. (Its used bytes
  // would lag: memory moved away stays held until its readers' leases end.)
  absl::Status result;
  absl::Notification done;
  std::thread drain([&] {
    result = (*admin)->Drain(node);
    done.Notify();
  });
  {
    Progress progress(absl::StrFormat("drain %s", node), before->objects, /*bytes=*/false,
                      "objects");
    while (!done.WaitForNotificationWithTimeout(kDrainPoll)) {
      absl::StatusOr<NodeState> now = FindNode(**admin, node);
      if (now.ok()) progress.Set(before->objects - std::min(before->objects, now->objects));
    }
  }
  drain.join();
  if (!result.ok()) return Fail(result);
  std::fprintf(stderr, "drained %s: %llu objects moved; it takes no new ones until undrain\n",
               node.c_str(), static_cast<unsigned long long>(before->objects));
  return kExitOk;
}

int UndrainCommand(Context& ctx) {
  if (ctx.args().size() != 1) return UsageError("undrain NODE");
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::Status s = (*admin)->Undrain(ctx.args()[0]);
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "%s takes new objects again\n", ctx.args()[0].c_str());
  return kExitOk;
}

int EvictCommand(Context& ctx) {
  std::string prefix = absl::GetFlag(FLAGS_prefix);
  bool all = absl::GetFlag(FLAGS_all);
  if (!ctx.args().empty() || prefix.empty() == !all) {
    return UsageError("evict --prefix PREFIX | evict --all [--tier memory|flash|all]");
  }
  std::string tier_name = absl::GetFlag(FLAGS_tier);
  EvictTier tier = EvictTier::kMemory;
  if (tier_name == "flash") {
    tier = EvictTier::kFlash;
  } else if (tier_name == "all") {
    tier = EvictTier::kAll;
  } else if (tier_name != "memory") {
    return UsageError("--tier is memory, flash or all");
  }
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::StatusOr<uint64_t> evicted;
  {
    Progress progress(all ? "evict all" : absl::StrFormat("evict %s*", prefix), 0, /*bytes=*/false);
    evicted = (*admin)->Evict(prefix, tier);
  }
  if (!evicted.ok()) return Fail(evicted.status());
  if (ctx.json()) {
    PrintJson({{"prefix", prefix}, {"tier", tier_name}, {"evicted", *evicted}});
  } else {
    std::printf("evicted %llu object%s\n", static_cast<unsigned long long>(*evicted),
                *evicted == 1 ? "" : "s");
  }
  return kExitOk;
}

}  // namespace unipool::ctl
