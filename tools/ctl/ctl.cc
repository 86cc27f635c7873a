#include "ctl.h"

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "output.h"

ABSL_FLAG(std::string, tls_ca, "",
          "for pools that speak TLS: the CA certificate the servers' must be signed by "
          "(default: $UNIPOOL_TLS_CA, else plain TCP)");
ABSL_FLAG(std::string, tls_name, "",
          "the name the servers' certificates must carry (default: the host dialled)");

namespace unipool::ctl {

ClientOptions Context::options() const {
  ClientOptions options;
  options.directory = directory_;
  options.name = "unipoolctl";
  options.key_file = key_file_;
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_name = absl::GetFlag(FLAGS_tls_name);
  return options;
}

absl::StatusOr<Client*> Context::client() {
  if (client_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options());
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
  }
  return client_.get();
}

absl::StatusOr<Admin*> Context::admin() {
  if (admin_ == nullptr) {
    absl::StatusOr<Client*> connected = client();
    if (!connected.ok()) return connected.status();
    admin_ = std::make_unique<Admin>(**connected);
  }
  return admin_.get();
}

absl::StatusOr<PoolState> Context::pool_state() {
  absl::StatusOr<Admin*> connected = admin();
  if (!connected.ok()) return connected.status();
  return (*connected)->State();
}

absl::StatusOr<TensorClient*> Context::tensors() {
  if (tensors_ == nullptr) {
    absl::StatusOr<std::unique_ptr<TensorClient>> tensors = TensorClient::Connect(options());
    if (!tensors.ok()) return tensors.status();
    tensors_ = std::move(*tensors);
  }
  return tensors_.get();
}

absl::StatusOr<std::unique_ptr<Admin>> Context::AdminAt(const std::string& address) const {
  ClientOptions one = options();
  one.directory = address;
  return Admin::Connect(one);
}

int Fail(std::string_view message) {
  std::fprintf(stderr, "unipoolctl: %s\n", OneLine(message).c_str());
  return kExitError;
}

int Fail(const absl::Status& status) {
  return Fail(std::string_view(status.message().data(), status.message().size()));
}

int UsageError(std::string_view usage) {
  std::fprintf(stderr, "unipoolctl: usage: unipoolctl %s\n", OneLine(usage).c_str());
  return kExitUsage;
}

int BadFlag(std::string_view message) {
  std::fprintf(stderr, "unipoolctl: %s\n", OneLine(message).c_str());
  return kExitUsage;
}

}  // namespace unipool::ctl
