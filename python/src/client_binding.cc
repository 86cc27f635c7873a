#include "client_binding.h"

#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "buffers.h"
#include "conversions.h"
#include "errors.h"
#include "unipool/admin.h"
#include "unipool/common/protocol.h"

namespace unipool::python {
namespace py = pybind11;
namespace {

constexpr char kOptionNames[] =
    "name, key_file, tls_ca, tls_name, connect_timeout, io_timeout, directory_retry, "
    "pool_full_wait, "
    "max_idle_connections, rdma, rdma_device, rdma_devices, shm, location_cache_entries, "
    "location_cache_ttl, copy_threads, max_view_bytes, prefault_reservations";

// ClientOptions from Client(directory=..., **options); durations in seconds.
ClientOptions ParseOptions(const std::string& directory, const py::kwargs& kwargs) {
  ClientOptions options;
  options.directory = directory;
  for (auto [key, value] : kwargs) {
    std::string name = py::cast<std::string>(key);
    if (name == "name") {
      options.name = py::cast<std::string>(value);
    } else if (name == "key_file") {
      options.key_file = py::cast<std::string>(value);
    } else if (name == "tls_ca") {
      options.tls_ca = py::cast<std::string>(value);
    } else if (name == "tls_name") {
      options.tls_name = py::cast<std::string>(value);
    } else if (name == "directory_retry") {
      options.directory_retry = absl::Seconds(py::cast<double>(value));
    } else if (name == "pool_full_wait") {
      options.pool_full_wait = absl::Seconds(py::cast<double>(value));
    } else if (name == "connect_timeout") {
      options.connect_timeout = absl::Seconds(py::cast<double>(value));
    } else if (name == "io_timeout") {
      options.io_timeout = absl::Seconds(py::cast<double>(value));
    } else if (name == "max_idle_connections") {
      options.max_idle_connections = py::cast<int>(value);
    } else if (name == "rdma") {
      absl::StatusOr<RdmaPolicy> rdma = ParseRdmaPolicy(py::cast<std::string>(value));
      if (!rdma.ok()) Raise(rdma.status());
      options.rdma = *rdma;
    } else if (name == "rdma_device") {
      options.rdma_device = py::cast<std::string>(value);
    } else if (name == "rdma_devices") {
      options.rdma_devices = py::cast<std::vector<std::string>>(value);
    } else if (name == "shm") {
      options.shm = py::cast<bool>(value);
    } else if (name == "location_cache_entries") {
      options.location_cache_entries = py::cast<size_t>(value);
    } else if (name == "location_cache_ttl") {
      options.location_cache_ttl = absl::Seconds(py::cast<double>(value));
    } else if (name == "copy_threads") {
      options.copy_threads = py::cast<int>(value);
    } else if (name == "max_view_bytes") {
      options.max_view_bytes = py::cast<uint64_t>(value);
    } else if (name == "prefault_reservations") {
      options.prefault_reservations = py::cast<bool>(value);
    } else {
      RaiseTypeError(
          absl::StrFormat("Client: unknown option '%s' (options: %s)", name, kOptionNames));
    }
  }
  return options;
}

std::unique_ptr<PyClient> Connect(const std::string& directory, const py::kwargs& kwargs) {
  ClientOptions options = ParseOptions(directory, kwargs);
  absl::StatusOr<std::unique_ptr<Client>> client;
  {
    py::gil_scoped_release release;
    client = Client::Connect(options);
  }
  if (!client.ok()) Raise(client.status());
  return std::make_unique<PyClient>(std::shared_ptr<Client>(std::move(*client)), options);
}

void Put(PyClient& self, const std::string& key, py::handle value, bool replace, int replicas) {
  std::shared_ptr<Client> client = self.client();
  HeldBuffer held =
      HeldBuffer::ForRead(value, [&] { return absl::StrFormat("put '%s'", PrintableKey(key)); });
  absl::Status status;
  {
    py::gil_scoped_release release;
    status = client->Put(key, held.bytes(), PutOptions{.replace = replace, .replicas = replicas});
  }
  Check(status);
}

py::bytes GetBytes(PyClient& self, const std::string& key) {
  std::shared_ptr<Client> client = self.client();
  absl::StatusOr<std::vector<uint8_t>> value;
  {
    py::gil_scoped_release release;
    value = client->Get(key);
  }
  if (!value.ok()) Raise(value.status());
  return py::bytes(reinterpret_cast<const char*>(value->data()), value->size());
}

size_t GetInto(PyClient& self, const std::string& key, py::handle target) {
  std::shared_ptr<Client> client = self.client();
  HeldBuffer held = HeldBuffer::ForWrite(
      target, [&] { return absl::StrFormat("get_into '%s'", PrintableKey(key)); });
  absl::StatusOr<size_t> read;
  {
    py::gil_scoped_release release;
    read = client->Get(key, held.writable());
  }
  if (!read.ok()) Raise(read.status());
  return *read;
}

py::object BatchPut(PyClient& self, std::vector<std::string> keys, py::sequence values,
                    bool replace, int replicas, std::string_view errors) {
  std::shared_ptr<Client> client = self.client();
  ErrorMode mode = ParseErrorMode(errors);
  KeyBatch batch(std::move(keys));
  std::vector<HeldBuffer> held = HoldAll(values, /*writable=*/false, "batch_put", batch.keys);
  std::vector<std::span<const uint8_t>> spans;
  for (const HeldBuffer& h : held) spans.push_back(h.bytes());
  std::vector<absl::Status> results;
  {
    py::gil_scoped_release release;
    results =
        client->BatchPut(batch.views, spans, PutOptions{.replace = replace, .replicas = replicas});
  }
  py::list list = ResultList(results, mode);
  return mode == ErrorMode::kRaise ? py::object(py::none()) : py::object(list);
}

py::list BatchGetInto(PyClient& self, std::vector<std::string> keys, py::object targets,
                      std::string_view errors) {
  std::shared_ptr<Client> client = self.client();
  ErrorMode mode = ParseErrorMode(errors);
  KeyBatch batch(std::move(keys));
  HeldTargets held = HoldTargets(targets, "batch_get_into", batch.keys);
  std::vector<absl::StatusOr<size_t>> results;
  {
    py::gil_scoped_release release;
    results = client->BatchGet(batch.views, held.pieces);
  }
  return ResultList(results, mode);
}

size_t GetPrefixInto(PyClient& self, std::vector<std::string> keys, py::object targets) {
  std::shared_ptr<Client> client = self.client();
  KeyBatch batch(std::move(keys));
  HeldTargets held = HoldTargets(targets, "get_prefix_into", batch.keys);
  absl::StatusOr<size_t> read;
  {
    py::gil_scoped_release release;
    read = client->GetPrefix(batch.views, held.pieces);
  }
  if (!read.ok()) Raise(read.status());
  return *read;
}

// Runs `call` on the client with the GIL released and returns its value, or
// raises its error.
template <typename Call>
auto Unlocked(PyClient& self, Call call) {
  std::shared_ptr<Client> client = self.client();
  decltype(call(*client)) result;
  {
    py::gil_scoped_release release;
    result = call(*client);
  }
  if constexpr (std::is_same_v<decltype(result), absl::Status>) {
    Check(result);
  } else {
    if (!result.ok()) Raise(result.status());
    return *std::move(result);
  }
}

}  // namespace

std::shared_ptr<Client> PyClient::client() const {
  if (client_ == nullptr) {
    Raise(absl::FailedPreconditionError("unipool.Client is closed"));
  }
  return client_;
}

std::shared_ptr<TensorClient> PyClient::tensors() {
  client();  // raises once closed
  if (tensors_ != nullptr) return tensors_;
  absl::StatusOr<std::unique_ptr<TensorClient>> connected;
  {
    py::gil_scoped_release release;
    connected = TensorClient::Connect(options_);
  }
  if (!connected.ok()) Raise(connected.status());
  client();                                                   // closed by another thread meanwhile
  if (tensors_ == nullptr) tensors_ = std::move(*connected);  // else another thread's
  return tensors_;
}

PyClientClass BindClient(py::module_& m) {
  PyClientClass cls(m, "Client", R"doc(
A connection to a unipool pool (its directory; page bytes go straight to the
nodes). Thread-safe: share one per process. Use as a context manager, or
call close(). Every call releases the GIL while it talks to the pool.

Values are any C-contiguous buffer-protocol object (bytes, bytearray,
memoryview, numpy arrays, torch_tensor.numpy()). The *_into calls write
straight into the target's own memory.
)doc");
  cls.def(py::init(&Connect), py::arg("directory") = "127.0.0.1:7300", R"doc(
Connects to the directory at HOST:PORT (one round trip to check it answers).
Options: name; key_file (the cluster key or a token; default
$UNIPOOL_KEY_FILE, else none); tls_ca (the CA certificate of a pool that
speaks TLS; default $UNIPOOL_TLS_CA, else plain TCP) and tls_name (the name
the servers' certificates must carry; default the host dialled);
connect_timeout, io_timeout and directory_retry (seconds); pool_full_wait
(seconds a put waits for room that leases will free in a full pool, 30);
max_idle_connections; rdma ("auto", "rc", "uc", "off"), rdma_device, rdma_devices (a list), shm
(bool); location_cache_entries, location_cache_ttl (seconds). Raises Unavailable when the directory cannot be reached and
Unauthenticated when the key is refused.)doc");
  cls.def("close", &PyClient::Close, "Closes the client; later calls raise FailedPrecondition.");
  cls.def_property_readonly("closed", &PyClient::closed);
  cls.def("__enter__", [](py::object self) { return self; });
  cls.def("__exit__", [](PyClient& self, py::args) { self.Close(); });
  cls.def("put", &Put, py::arg("key"), py::arg("value"), py::kw_only(), py::arg("replace") = false,
          py::arg("replicas") = 1, R"doc(
Stores value under key (key 1..1024 bytes). Raises AlreadyExists unless
replace=True; replicas copies go on distinct nodes.)doc");
  cls.def("get", &GetBytes, py::arg("key"),
          "Returns the object's bytes (a new bytes object; get_into avoids the copy).");
  cls.def("get_into", &GetInto, py::arg("key"), py::arg("target"), R"doc(
Reads the object straight into target (writable, C-contiguous) and returns
its size. Raises InvalidArgument when target is too small.)doc");
  cls.def("batch_put", &BatchPut, py::arg("keys"), py::arg("values"), py::kw_only(),
          py::arg("replace") = false, py::arg("replicas") = 1, py::arg("errors") = "raise",
          R"doc(
Puts many objects with one directory round trip. errors="raise" raises the
first failed key's error; errors="return" returns a list with None or the
exception object for each key.)doc");
  cls.def("batch_get_into", &BatchGetInto, py::arg("keys"), py::arg("targets"), py::kw_only(),
          py::arg("errors") = "raise", R"doc(
Reads many objects into their targets (one directory round trip, one request
per node) and returns their sizes; errors as in batch_put. targets is a list
of buffers, one per key, or one writable buffer cut into equal pieces, one per
key (e.g. a 2-D numpy array with a row per page: cheapest for many pages).)doc");
  cls.def(
      "exists",
      [](PyClient& self, const std::string& key) {
        return Unlocked(self, [&](Client& c) { return c.Exists(key); });
      },
      py::arg("key"), "True when key is in the pool and readable.");
  cls.def(
      "batch_exists",
      [](PyClient& self, std::vector<std::string> keys, std::string_view errors) {
        std::shared_ptr<Client> client = self.client();
        ErrorMode mode = ParseErrorMode(errors);
        KeyBatch batch(std::move(keys));
        std::vector<absl::StatusOr<bool>> results;
        {
          py::gil_scoped_release release;
          results = client->BatchExists(batch.views);
        }
        return ResultList(results, mode);
      },
      py::arg("keys"), py::kw_only(), py::arg("errors") = "raise",
      "exists for many keys, with one directory round trip; errors as in batch_put.");
  cls.def(
      "lookup_prefix",
      [](PyClient& self, std::vector<std::string> keys) {
        KeyBatch batch(std::move(keys));
        return Unlocked(self, [&](Client& c) { return c.LookupPrefix(batch.views); });
      },
      py::arg("keys"), R"doc(
How many leading keys are in the pool, with one directory round trip; those
are leased and their locations cached, so a get that follows reads straight
from the nodes. For chains of KV block keys (unipool.kv).)doc");
  cls.def("get_prefix_into", &GetPrefixInto, py::arg("keys"), py::arg("targets"), R"doc(
Reads the longest stored prefix of keys into targets[0..n) (one directory
round trip, then one request per node) and returns n.)doc");
  cls.def(
      "remove",
      [](PyClient& self, const std::string& key) {
        Unlocked(self, [&](Client& c) { return c.Remove(key); });
      },
      py::arg("key"), "Removes key; raises NotFound when it is not in the pool.");
  cls.def(
      "stat",
      [](PyClient& self, const std::string& key) {
        return ToDict(Unlocked(self, [&](Client& c) { return Admin(c).Stat(key); }));
      },
      py::arg("key"), "Where key lives: length, version, checksum and its copies' nodes.");
  cls.def(
      "status",
      [](PyClient& self) {
        return ToDict(Unlocked(self, [](Client& c) { return Admin(c).State(); }));
      },
      "The pool's state: totals and one dict per node.");
  cls.def(
      "pin",
      [](PyClient& self, const std::string& key, bool prefix) {
        Unlocked(self, [&](Client& c) { return Admin(c).Pin(key, prefix); });
      },
      py::arg("key"), py::kw_only(), py::arg("prefix") = false,
      "Pins key (or every key starting with it, with prefix=True): never evicted.");
  cls.def(
      "unpin",
      [](PyClient& self, const std::string& key, bool prefix) {
        Unlocked(self, [&](Client& c) { return Admin(c).Unpin(key, prefix); });
      },
      py::arg("key"), py::kw_only(), py::arg("prefix") = false,
      "Removes a pin made with the same arguments; NotFound when there was none.");
  cls.def(
      "list",
      [](PyClient& self, const std::string& prefix, size_t limit, const std::string& start_after) {
        ListResult listed =
            Unlocked(self, [&](Client& c) { return Admin(c).List(prefix, limit, start_after); });
        py::list out;
        for (const ListEntry& entry : listed.entries) out.append(ToDict(entry));
        return out;
      },
      py::arg("prefix") = "", py::kw_only(), py::arg("limit") = 1000, py::arg("start_after") = "",
      R"doc(
Up to limit committed keys starting with prefix, after start_after, in
bytewise order, as dicts (key, length, version, created_unix_ms, nodes,
pinned). A full page means more may follow: call again with start_after.)doc");
  cls.def(
      "stats", [](PyClient& self) { return ToDict(self.client()->stats()); },
      "This client's counters (requests, bytes, transport, cache hits).");
  return cls;
}

}  // namespace unipool::python
