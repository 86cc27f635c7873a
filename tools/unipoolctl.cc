// unipoolctl: everything an operator does to a unipool pool, from a shell.
// One binary with subcommands (tools/ctl/*_cmd.cc, one family per file);
// `unipoolctl help` lists them.
//
// Every error is one line on stderr ("unipoolctl: ...") and a non-zero exit
// status: 1 when the operation failed, 2 for a malformed command line.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "ctl/ctl.h"
#include "unipool/common/process.h"

ABSL_FLAG(std::string, directory, "",
          "HOST:PORT of the directory, or of each directory of a replicated pool, comma "
          "separated (default: $UNIPOOL_DIRECTORY, else 127.0.0.1:7300)");
ABSL_FLAG(bool, json, false, "read commands: print JSON instead of a table");
ABSL_FLAG(std::string, key_file, "",
          "the cluster key or a token (default: $UNIPOOL_KEY_FILE, else none)");

namespace {

using unipool::ctl::Context;

constexpr char kUsage[] =
    "unipoolctl [--directory HOST:PORT] [--key-file KEY] [--tls-ca CA] [--json] COMMAND [ARGS]\n"
    "\n"
    "The pool\n"
    "  status                        pool totals, request rates and one row per node\n"
    "  nodes                         every node in detail, with its RDMA ports\n"
    "  fabric                        RDMA ports of every node and each client's paths to\n"
    "                                each node (bytes, errors), or TCP and why\n"
    "  tenants                       each tenant (token prefix): objects, stored and pinned\n"
    "                                bytes against its quotas (a token sees its own)\n"
    "  cluster up [--nodes N] [--directories 1-3] [--pool-size SIZE] [--listen HOST:PORT]\n"
    "             [--http HOST:PORT] [--work-dir DIR] [--tls-dir DIR]\n"
    "                                a directory and N nodes on this machine, with the\n"
    "                                dashboard, until Ctrl-C (TLS with tls init's DIR);\n"
    "                                --directories 2 or 3: a local etcd and replicated ones\n"
    "  cluster down --work-dir DIR   stop the cluster up running in DIR\n"
    "  directory status              each directory of a replicated pool: role (leader,\n"
    "                                standby, unreachable), term, position, lag\n"
    "  directory step-down           the leader hands over to a standby and exits (for\n"
    "                                upgrades; admin); prints how long the handover took\n"
    "Objects\n"
    "  ls [PREFIX] [--limit N]       keys with size, node(s), version, pinned, age\n"
    "  stat KEY                      where KEY lives, its size, version, checksum, age\n"
    "  exists KEY                    exit 0 if KEY exists, 1 if not\n"
    "  put KEY FILE [--replace] [--replicas N]\n"
    "                                store FILE's bytes ('-': stdin) under KEY\n"
    "  get KEY FILE                  write KEY's bytes to FILE ('-': stdout)\n"
    "  rm KEY | rm --prefix PREFIX   remove one key, or every key with the prefix\n"
    "Lifecycle\n"
    "  pin KEY | pin --prefix PREFIX         never evict it (also keys put later)\n"
    "  unpin KEY | unpin --prefix PREFIX     undo a pin\n"
    "  evict --prefix PREFIX | evict --all   evict unpinned, unleased objects now\n"
    "    [--tier memory|flash|all]           which copies: memory (default; a copy on a node's\n"
    "                                        flash stays there), flash, or all (the objects go)\n"
    "  drain NODE                    move every object off NODE; it takes no new ones\n"
    "  undrain NODE                  take NODE back into placement\n"
    "Security\n"
    "  keygen PATH                   write a new cluster key to PATH (mode 0600)\n"
    "  token create --role client|node|admin [--prefix PREFIX] [--quota SIZE]\n"
    "               [--pin-quota SIZE] [--reservation-quota SIZE]\n"
    "                                print a token derived from --key-file's cluster key,\n"
    "                                limited to the role and to keys under PREFIX; the\n"
    "                                tenant's quotas in allocated bytes (default: the\n"
    "                                directory's)\n"
    "  tls init DIR [--hosts NAME,ADDRESS,...]\n"
    "                                write a new CA and a server certificate for those\n"
    "                                hosts (servers: --tls-cert/--tls-key/--tls-ca;\n"
    "                                clients: --tls-ca or $UNIPOOL_TLS_CA)\n"
    "Models (tensors from safetensors files, striped over the nodes)\n"
    "  model load PATH --name NAME [--replicas N] [--stripe-size SIZE] [--pin]\n"
    "                                load a .safetensors file or a folder of shards\n"
    "  model ls [PREFIX]             models with tensors, size, pinned, age\n"
    "  model info NAME               its tensors: dtype, shape, size, stripes, nodes\n"
    "  model export NAME DIR         write its safetensors files (byte-identical)\n"
    "  model rm NAME | model pin NAME | model unpin NAME\n"
    "\n"
    "The directory is --directory, else $UNIPOOL_DIRECTORY, else 127.0.0.1:7300.\n"
    "--json works with status, nodes, fabric, tenants, directory status, ls, stat, exists,\n"
    "evict, model ls and model info. Sizes are in binary units (KiB, MiB, GiB). Progress\n"
    "bars appear only on a terminal.\n"
    "Errors: one line on stderr; exit 1 when an operation fails, 2 for bad usage.\n";

struct Command {
  const char* name;
  int (*run)(Context&);
};

constexpr Command kCommands[] = {
    {"status", unipool::ctl::StatusCommand},
    {"nodes", unipool::ctl::NodesCommand},
    {"ls", unipool::ctl::ListCommand},
    {"stat", unipool::ctl::StatCommand},
    {"exists", unipool::ctl::ExistsCommand},
    {"put", unipool::ctl::PutCommand},
    {"get", unipool::ctl::GetCommand},
    {"rm", unipool::ctl::RemoveCommand},
    {"pin", unipool::ctl::PinCommand},
    {"unpin", unipool::ctl::UnpinCommand},
    {"evict", unipool::ctl::EvictCommand},
    {"drain", unipool::ctl::DrainCommand},
    {"undrain", unipool::ctl::UndrainCommand},
    {"cluster", unipool::ctl::ClusterCommand},
    {"keygen", unipool::ctl::KeygenCommand},
    {"token", unipool::ctl::TokenCommand},
    {"tls", unipool::ctl::TlsCommand},
    {"model", unipool::ctl::ModelCommand},
    {"fabric", unipool::ctl::FabricCommand},
    {"tenants", unipool::ctl::TenantsCommand},
    {"directory", unipool::ctl::DirectoryCommand},
};

std::string DirectoryAddress() {
  std::string flag = absl::GetFlag(FLAGS_directory);
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("UNIPOOL_DIRECTORY"); env != nullptr && *env) return env;
  return "127.0.0.1:7300";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = unipool::ParseFlags(argc, argv, kUsage, /*positional=*/true);
  if (args.size() < 2) {
    std::fprintf(stderr, "unipoolctl: no command given (unipoolctl help lists them)\n");
    return unipool::ctl::kExitUsage;
  }
  std::string name = args[1];
  if (name == "help" || name == "-h") {
    std::fputs(kUsage, stdout);
    return unipool::ctl::kExitOk;
  }
  for (const Command& command : kCommands) {
    if (name != command.name) continue;
    Context ctx(std::vector<std::string>(args.begin() + 2, args.end()), DirectoryAddress(),
                absl::GetFlag(FLAGS_json), absl::GetFlag(FLAGS_key_file));
    return command.run(ctx);
  }
  std::fprintf(stderr, "unipoolctl: unknown command '%s' (unipoolctl help lists them)\n",
               name.c_str());
  return unipool::ctl::kExitUsage;
}
