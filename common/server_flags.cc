#include "unipool/common/server_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "unipool/common/process.h"
#include "unipool/common/tls.h"
#include "unipool/common/units.h"

ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "close a connection that has not completed its Hello within this time");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Minutes(15),
          "close a connection that sent no request for this long");
ABSL_FLAG(absl::Duration, frame_timeout, absl::Seconds(30),
          "longest silence tolerated inside one request or reply");
ABSL_FLAG(int, max_connections, 16384,
          "connections served at once (also held under the open-file limit)");
ABSL_FLAG(int, max_unauthenticated_connections, 1024,
          "connections still in their handshake, from anyone; when full, the oldest is closed "
          "for a new one");
ABSL_FLAG(int, max_connections_per_identity, 1024,
          "connections of one token (or, without --key-file, one address); past it the oldest "
          "idle ones are closed. The cluster key is never capped");
ABSL_FLAG(std::string, max_request_memory, "",
          "bytes of requests being received held at once (e.g. 2GiB); a request that would go "
          "past it is refused (default: a sixteenth of this machine's memory, at least 256MiB)");
ABSL_FLAG(int, max_workers, 64, "requests handled at once; more wait their turn");
ABSL_FLAG(std::string, key_file, "",
          "the pool's cluster key (unipoolctl keygen; mode 0600); every peer must prove it "
          "holds the key or a token derived from it (default: $UNIPOOL_KEY_FILE, else none)");
ABSL_FLAG(bool, insecure, false,
          "serve a non-loopback address without a cluster key (no authentication at all)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) of this server: its port then speaks only TLS 1.3 "
          "(with --tls-key and --tls-ca; unipoolctl tls init makes them; default: plain TCP)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM certificate of the CA that signed the pool's servers: checked when this server "
          "dials the others");
ABSL_FLAG(std::string, tls_name, "",
          "the name the other servers' certificates must carry (default: the host dialled)");

namespace unipool {
namespace {

// All of --tls-cert, --tls-key and --tls-ca, or none: a server serves TLS
// and also dials the pool's other servers, which then speak TLS too. The
// CA becomes this process's for its own connections.
std::shared_ptr<const TlsServerConfig> TlsFromFlags(std::string_view program) {
  std::string cert = absl::GetFlag(FLAGS_tls_cert);
  std::string key = absl::GetFlag(FLAGS_tls_key);
  std::string ca = absl::GetFlag(FLAGS_tls_ca);
  if (cert.empty() && key.empty() && ca.empty()) return nullptr;
  if (cert.empty() || key.empty() || ca.empty()) {
    ExitBadUsage(program,
                 "--tls-cert, --tls-key and --tls-ca go together: a TLS server also dials the "
                 "pool's other servers and checks their certificates");
  }
  auto server = TlsServerConfig::Load(cert, key);
  if (!server.ok()) ExitBadUsage(program, std::string(server.status().message()));
  auto client = TlsClientConfig::Load(ca, absl::GetFlag(FLAGS_tls_name));
  if (!client.ok()) ExitBadUsage(program, std::string(client.status().message()));
  SetProcessTls(*client);
  return *server;
}

// --max-request-memory: a size no smaller than the largest meta; 0 (the
// default) when not given.
uint64_t RequestMemoryFromFlag(std::string_view program, const FrameLimits& limits) {
  std::string text = absl::GetFlag(FLAGS_max_request_memory);
  if (text.empty()) return 0;
  auto bytes = ParseSize(text);
  if (!bytes.ok()) {
    ExitBadUsage(program, absl::StrFormat("--max-request-memory: %s", bytes.status().message()));
  }
  if (*bytes < limits.max_meta_bytes) {
    ExitBadUsage(program,
                 absl::StrFormat("--max-request-memory must be at least %s (the largest request "
                                 "meta), not %s",
                                 FormatSize(limits.max_meta_bytes), FormatSize(*bytes)));
  }
  return *bytes;
}

}  // namespace

ServerOptions ServerOptionsFromFlags(std::string_view program, std::string name) {
  ServerOptions options;
  options.name = std::move(name);
  RequirePositiveDuration(program, "handshake-timeout", absl::GetFlag(FLAGS_handshake_timeout));
  RequirePositiveDuration(program, "idle-timeout", absl::GetFlag(FLAGS_idle_timeout));
  RequirePositiveDuration(program, "frame-timeout", absl::GetFlag(FLAGS_frame_timeout));
  options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  options.frame_timeout = absl::GetFlag(FLAGS_frame_timeout);
  const std::pair<const char*, int> caps[] = {
      {"max-connections", absl::GetFlag(FLAGS_max_connections)},
      {"max-unauthenticated-connections", absl::GetFlag(FLAGS_max_unauthenticated_connections)},
      {"max-connections-per-identity", absl::GetFlag(FLAGS_max_connections_per_identity)},
      {"max-workers", absl::GetFlag(FLAGS_max_workers)}};
  for (const auto& [flag, value] : caps) {
    if (value < 1)
      ExitBadUsage(program, absl::StrFormat("--%s must be at least 1, not %d", flag, value));
  }
  options.max_connections = caps[0].second;
  options.max_unauthenticated = caps[1].second;
  options.max_connections_per_identity = caps[2].second;
  options.max_workers = caps[3].second;
  options.max_buffered_bytes = RequestMemoryFromFlag(program, options.limits);
  auto key = LoadCredentialFromFlagOrEnv(absl::GetFlag(FLAGS_key_file));
  if (!key.ok()) ExitBadUsage(program, std::string(key.status().message()));
  if (*key != nullptr && !(*key)->is_cluster_key) {
    ExitBadUsage(program, "--key-file holds a token; a server needs the cluster key itself");
  }
  options.cluster_key = *key;
  options.insecure = absl::GetFlag(FLAGS_insecure);
  SetProcessCredential(*key);  // our own connections to other servers prove it too
  options.tls = TlsFromFlags(program);
  return options;
}

}  // namespace unipool
