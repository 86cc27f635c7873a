// unipoolctl ls, stat, exists, rm: what is in the pool, and removing it.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "output.h"
#include "unipool/common/units.h"

ABSL_FLAG(int64_t, limit, 0, "ls: list at most this many keys (default 0: all)");
ABSL_FLAG(std::string, prefix, "", "rm: remove every key starting with this prefix");

namespace unipool::ctl {
namespace {

using Json = nlohmann::ordered_json;

// The directory lists at most this many keys per request.
constexpr size_t kListPage = 1000;

std::string Nodes(const ListEntry& e) {
  return e.nodes.empty() ? "-" : absl::StrJoin(e.nodes, ",");
}

Json EntryJson(const ListEntry& e, absl::Time now) {
  return {
      {"key", e.key},
      {"size", e.length},
      {"nodes", e.nodes},
      {"version", e.version},
      {"pinned", e.pinned},
      {"created_unix_ms", e.created_unix_ms},
      {"age_seconds",
       std::max<int64_t>(0, absl::ToInt64Seconds(now - absl::FromUnixMillis(e.created_unix_ms)))}};
}

// Every key starting with `prefix` (at most `limit`, 0 = all), page by page.
// Sets *more when keys were left out because of the limit.
absl::StatusOr<std::vector<ListEntry>> ListAll(Admin& admin, const std::string& prefix,
                                               uint64_t limit, bool* more) {
  std::vector<ListEntry> all;
  std::string after;
  *more = false;
  while (true) {
    size_t want = kListPage;
    if (limit > 0) want = std::min<uint64_t>(want, limit - all.size());
    absl::StatusOr<ListResult> page = admin.List(prefix, want, after);
    if (!page.ok()) return page.status();
    for (ListEntry& e : page->entries) all.push_back(std::move(e));
    if (!page->more || page->entries.empty()) return all;
    if (limit > 0 && all.size() >= limit) {
      *more = true;
      return all;
    }
    after = all.back().key;
  }
}

// The listing entry of exactly `key`, if it exists (the key itself is the
// first key having itself as a prefix).
absl::StatusOr<ListEntry> Find(Admin& admin, const std::string& key) {
  absl::StatusOr<ListResult> page = admin.List(key, 1);
  if (!page.ok()) return page.status();
  if (page->entries.empty() || page->entries[0].key != key) {
    return absl::NotFoundError(absl::StrFormat("key '%s' not found", key));
  }
  return std::move(page->entries[0]);
}

}  // namespace

int ListCommand(Context& ctx) {
  if (ctx.args().size() > 1) return UsageError("ls [PREFIX] [--limit N] [--json]");
  int64_t limit = absl::GetFlag(FLAGS_limit);
  if (limit < 0) return BadFlag("--limit must be 0 (all) or more");
  std::string prefix = ctx.args().empty() ? "" : ctx.args()[0];
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  bool more = false;
  absl::StatusOr<std::vector<ListEntry>> entries =
      ListAll(**admin, prefix, static_cast<uint64_t>(limit), &more);
  if (!entries.ok()) return Fail(entries.status());
  absl::Time now = absl::Now();
  if (ctx.json()) {
    Json keys = Json::array();
    for (const ListEntry& e : *entries) keys.push_back(EntryJson(e, now));
    PrintJson({{"prefix", prefix}, {"keys", std::move(keys)}, {"more", more}});
    return kExitOk;
  }
  Table t;
  t.Column("KEY");
  t.Column("SIZE", true);
  t.Column("NODES");
  t.Column("VERSION", true);
  t.Column("PINNED");
  t.Column("AGE", true);
  uint64_t bytes = 0;
  for (const ListEntry& e : *entries) {
    bytes += e.length;
    t.Row({DisplayKey(e.key), FormatSize(e.length), Nodes(e), absl::StrFormat("%d", e.version),
           e.pinned ? "yes" : "no", FormatAge(now - absl::FromUnixMillis(e.created_unix_ms))});
  }
  if (!t.empty()) t.Print();
  std::fprintf(stderr, "%zu key%s, %s%s\n", entries->size(), entries->size() == 1 ? "" : "s",
               FormatSize(bytes).c_str(), more ? " (more not shown: raise --limit)" : "");
  return kExitOk;
}

int StatCommand(Context& ctx) {
  if (ctx.args().size() != 1) return UsageError("stat KEY [--json]");
  const std::string& key = ctx.args()[0];
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::StatusOr<ObjectInfo> info = (*admin)->Stat(key);
  if (!info.ok()) return Fail(info.status());
  absl::StatusOr<ListEntry> entry = Find(**admin, key);
  if (!entry.ok()) return Fail(entry.status());  // removed in between
  absl::Time now = absl::Now();
  if (ctx.json()) {
    Json out = EntryJson(*entry, now);
    out["node_id"] = info->copies[0].node_id;
    out["node_address"] = info->copies[0].node_address;
    out["node_up"] = info->copies[0].node_up;
    out["checksum"] = absl::StrFormat("%016x", info->checksum);
    PrintJson(out);
    return kExitOk;
  }
  std::printf("key       %s\n", DisplayKey(key).c_str());
  std::printf("size      %s (%llu bytes)\n", FormatSize(info->length).c_str(),
              static_cast<unsigned long long>(info->length));
  std::printf("node      %s (id %u, %s, %s)\n", Nodes(*entry).c_str(), info->copies[0].node_id,
              info->copies[0].node_address.c_str(), info->copies[0].node_up ? "up" : "down");
  std::printf("version   %llu\n", static_cast<unsigned long long>(info->version));
  std::printf("checksum  %016llx (XXH3-64)\n", static_cast<unsigned long long>(info->checksum));
  std::printf("pinned    %s\n", entry->pinned ? "yes" : "no");
  std::printf("age       %s\n",
              FormatAge(now - absl::FromUnixMillis(entry->created_unix_ms)).c_str());
  return kExitOk;
}

int ExistsCommand(Context& ctx) {
  if (ctx.args().size() != 1) return UsageError("exists KEY [--json]");
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<bool> exists = (*client)->Exists(ctx.args()[0]);
  if (!exists.ok()) return Fail(exists.status());
  if (ctx.json()) {
    PrintJson({{"key", ctx.args()[0]}, {"exists", *exists}});
  } else {
    std::printf("%s\n", *exists ? "yes" : "no");
  }
  return *exists ? kExitOk : kExitError;
}

int RemoveCommand(Context& ctx) {
  std::string prefix = absl::GetFlag(FLAGS_prefix);
  bool by_prefix = !prefix.empty();
  if (by_prefix ? !ctx.args().empty() : ctx.args().size() != 1) {
    return UsageError("rm KEY | rm --prefix PREFIX");
  }
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return Fail(client.status());
  if (!by_prefix) {
    absl::Status s = (*client)->Remove(ctx.args()[0]);
    return s.ok() ? kExitOk : Fail(s);
  }
  // Every key that has the prefix now; keys put meanwhile may remain.
  bool more = false;
  absl::StatusOr<Admin*> admin = ctx.admin();
  if (!admin.ok()) return Fail(admin.status());
  absl::StatusOr<std::vector<ListEntry>> entries = ListAll(**admin, prefix, 0, &more);
  if (!entries.ok()) return Fail(entries.status());
  Progress progress(absl::StrFormat("rm %s*", prefix), entries->size(), /*bytes=*/false);
  uint64_t removed = 0, gone = 0;
  for (size_t first = 0; first < entries->size(); first += kListPage) {
    size_t last = std::min(entries->size(), first + kListPage);
    std::vector<std::string_view> keys;
    for (size_t i = first; i < last; ++i) keys.push_back((*entries)[i].key);
    std::vector<absl::Status> results = (*client)->BatchRemove(keys);
    for (const absl::Status& s : results) {
      if (s.ok()) {
        ++removed;
      } else if (absl::IsNotFound(s)) {
        ++gone;  // removed by someone else meanwhile: the goal is met
      } else {
        progress.Finish();
        return Fail(s);
      }
    }
    progress.Set(last);
  }
  progress.Finish();
  std::fprintf(stderr, "removed %llu key%s with prefix '%s'\n",
               static_cast<unsigned long long>(removed), removed == 1 ? "" : "s", prefix.c_str());
  return kExitOk;
}

}  // namespace unipool::ctl
