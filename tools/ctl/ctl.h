// unipoolctl's pieces: every subcommand is a function taking a Context; each
// file under tools/ctl/ holds one family of them, tools/unipoolctl.cc the
// table that dispatches to them.
//
// Conventions every command keeps:
//   - results on stdout; progress and notes on stderr;
//   - every error is exactly one line on stderr, "unipoolctl: ...", and a
//     non-zero exit: kExitError for a failed operation, kExitUsage for a
//     malformed command line;
//   - read commands print JSON instead of a table with --json.
#ifndef UNIPOOL_TOOLS_CTL_CTL_H_
#define UNIPOOL_TOOLS_CTL_CTL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "unipool/admin.h"
#include "unipool/client.h"
#include "unipool/tensor.h"

namespace unipool::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

class Context {
 public:
  Context(std::vector<std::string> args, std::string directory, bool json, std::string key_file)
      : args_(std::move(args)),
        directory_(std::move(directory)),
        json_(json),
        key_file_(std::move(key_file)) {}

  // Positional arguments after the command name.
  const std::vector<std::string>& args() const { return args_; }
  const std::string& directory() const { return directory_; }
  bool json() const { return json_; }
  // --key-file: the cluster key or a token; empty: $UNIPOOL_KEY_FILE.
  const std::string& key_file() const { return key_file_; }

  // The client, connected on first use, and administration through it.
  absl::StatusOr<Client*> client();
  absl::StatusOr<Admin*> admin();
  // The pool's state (Admin::State) over the admin connection.
  absl::StatusOr<PoolState> pool_state();
  // Tensors and models (a connection of their own).
  absl::StatusOr<TensorClient*> tensors();
  // Administration of the one directory at `address` (of several), asked
  // once: Unavailable at once when it does not answer.
  absl::StatusOr<std::unique_ptr<Admin>> AdminAt(const std::string& address) const;

 private:
  // Every client's options: the directory, the name, --key-file, --tls-ca,
  // --tls-name.
  ClientOptions options() const;

  std::vector<std::string> args_;
  std::string directory_;
  bool json_;
  std::string key_file_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Admin> admin_;  // uses client_
  std::unique_ptr<TensorClient> tensors_;
};

// Prints "unipoolctl: MESSAGE" on one line on stderr; returns kExitError.
int Fail(std::string_view message);
int Fail(const absl::Status& status);
// Prints "unipoolctl: usage: unipoolctl USAGE"; returns kExitUsage.
int UsageError(std::string_view usage);
// Prints "unipoolctl: MESSAGE" for a flag out of range; returns kExitUsage.
int BadFlag(std::string_view message);

// The subcommands (tools/ctl/*_cmd.cc).
int StatusCommand(Context& ctx);
int NodesCommand(Context& ctx);
int TenantsCommand(Context& ctx);
int FabricCommand(Context& ctx);
int ListCommand(Context& ctx);
int StatCommand(Context& ctx);
int ExistsCommand(Context& ctx);
int RemoveCommand(Context& ctx);
int PutCommand(Context& ctx);
int GetCommand(Context& ctx);
int PinCommand(Context& ctx);
int UnpinCommand(Context& ctx);
int DrainCommand(Context& ctx);
int UndrainCommand(Context& ctx);
int EvictCommand(Context& ctx);
int ClusterCommand(Context& ctx);
int KeygenCommand(Context& ctx);
int TokenCommand(Context& ctx);
int TlsCommand(Context& ctx);
int ModelCommand(Context& ctx);
int DirectoryCommand(Context& ctx);

}  // namespace unipool::ctl

#endif  // UNIPOOL_TOOLS_CTL_CTL_H_
