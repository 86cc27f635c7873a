// What a node remembers across restarts, in its --state-dir: its identity
// (a random secret that proves to the directory that a registration under
// its name is its own) and the id of the pool it joined (so that a directory
// whose catalog was lost does not silently take it in as a new, empty node).
//
// Files (mode 0600 in a 0700 folder): `identity` (64 hex digits) and
// `pool_id` (as the directory sent it). Delete `pool_id` to let the node join
// another pool; delete `identity` and the directory refuses the node's name
// until it forgets the old record (--forget-node-after).
//
// Thread safety: thread-compatible (the directory link's thread owns it).
#ifndef UNIPOOL_NODE_NODE_IDENTITY_H_
#define UNIPOOL_NODE_NODE_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"

namespace unipool {

class NodeIdentity {
 public:
  // Opens the state in `dir`, creating the folder and a new identity when
  // missing. FailedPrecondition when a file is unreadable or malformed.
  static absl::StatusOr<NodeIdentity> Open(const std::string& dir);
  // The default folder for a node named `name`:
  // $XDG_STATE_HOME/unipool/node-NAME, else ~/.local/state/unipool/node-NAME
  // (characters other than letters, digits, '.', '-' and '_' become '_').
  // Empty when neither variable is set.
  static std::string DefaultDir(const std::string& name);

  const std::string& dir() const { return dir_; }
  // The identity secret (raw bytes).
  const std::string& identity() const { return identity_; }
  // The pool joined last; empty before the first registration.
  const std::string& pool_id() const { return pool_id_; }
  // Remembers `pool_id` (written atomically when it changed).
  absl::Status RememberPool(const std::string& pool_id);

 private:
  std::string dir_;
  std::string identity_;
  std::string pool_id_;
};

}  // namespace unipool

#endif  // UNIPOOL_NODE_NODE_IDENTITY_H_
