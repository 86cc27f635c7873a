// The *_async calls: each starts the SDK's asynchronous batch and returns a
// unipool.Pending holding what the batch uses (the caller's buffers, held
// through the buffer protocol, and the client) until it is done.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "buffers.h"
#include "client_binding.h"
#include "conversions.h"
#include "errors.h"

namespace unipool::python {
namespace py = pybind11;
namespace {

// Thread safety: used with the GIL held; wait() releases it while blocked.
class PyPending {
 public:
  virtual ~PyPending() = default;
  virtual bool Done() const = 0;
  // Blocks (GIL released) until done, then returns the results or raises.
  virtual py::object Wait() = 0;
};

template <typename Result>
class PendingBatch : public PyPending {
 public:
  PendingBatch(std::shared_ptr<Client> client, std::vector<HeldBuffer> buffers, ErrorMode mode)
      : client_(std::move(client)), buffers_(std::move(buffers)), mode_(mode) {}
  // The batch ends (the SDK's handle waits) before the buffers are released.
  ~PendingBatch() override { pending_.reset(); }

  void Start(Pending<Result> pending) { pending_.emplace(std::move(pending)); }
  bool Done() const override { return pending_->Done(); }
  py::object Wait() override {
    {
      py::gil_scoped_release release;
      pending_->Wait();
    }
    return Convert(pending_->Wait());
  }

 private:
  py::object Convert(const std::vector<absl::StatusOr<size_t>>& r) { return ResultList(r, mode_); }
  py::object Convert(const std::vector<absl::Status>& r) {
    py::list list = ResultList(r, mode_);
    return mode_ == ErrorMode::kRaise ? py::object(py::none()) : py::object(list);
  }
  py::object Convert(const absl::StatusOr<size_t>& r) {
    if (!r.ok()) Raise(r.status());
    return py::int_(*r);
  }

  std::shared_ptr<Client> client_;  // kept alive while the batch runs
  std::vector<HeldBuffer> buffers_;
  ErrorMode mode_;
  std::optional<Pending<Result>> pending_;
};

// Holds the targets (or values) and builds the spans the SDK call takes.
template <typename Span>
std::vector<Span> Spans(const std::vector<HeldBuffer>& held) {
  std::vector<Span> spans;
  for (const HeldBuffer& h : held) {
    if constexpr (std::is_const_v<typename Span::element_type>) {
      spans.push_back(h.bytes());
    } else {
      spans.push_back(h.writable());
    }
  }
  return spans;
}

std::unique_ptr<PyPending> BatchGetAsync(PyClient& self, std::vector<std::string> keys,
                                         py::object targets, std::string_view errors) {
  std::shared_ptr<Client> client = self.client();
  ErrorMode mode = ParseErrorMode(errors);
  KeyBatch batch(std::move(keys));
  HeldTargets targets_held = HoldTargets(targets, "batch_get_into_async", batch.keys);
  std::vector<std::span<uint8_t>> spans = std::move(targets_held.pieces);
  std::vector<HeldBuffer> held = std::move(targets_held.buffers);
  auto pending = std::make_unique<PendingBatch<std::vector<absl::StatusOr<size_t>>>>(
      client, std::move(held), mode);
  pending->Start(client->BatchGetAsync(batch.views, spans));
  return pending;
}

std::unique_ptr<PyPending> BatchPutAsync(PyClient& self, std::vector<std::string> keys,
                                         py::sequence values, bool replace, int replicas,
                                         std::string_view errors) {
  std::shared_ptr<Client> client = self.client();
  ErrorMode mode = ParseErrorMode(errors);
  KeyBatch batch(std::move(keys));
  auto held = HoldAll(values, /*writable=*/false, "batch_put_async", batch.keys);
  auto spans = Spans<std::span<const uint8_t>>(held);
  auto pending =
      std::make_unique<PendingBatch<std::vector<absl::Status>>>(client, std::move(held), mode);
  pending->Start(client->BatchPutAsync(batch.views, spans,
                                       PutOptions{.replace = replace, .replicas = replicas}));
  return pending;
}

std::unique_ptr<PyPending> GetPrefixAsync(PyClient& self, std::vector<std::string> keys,
                                          py::object targets) {
  std::shared_ptr<Client> client = self.client();
  KeyBatch batch(std::move(keys));
  HeldTargets targets_held = HoldTargets(targets, "get_prefix_into_async", batch.keys);
  std::vector<std::span<uint8_t>> spans = std::move(targets_held.pieces);
  std::vector<HeldBuffer> held = std::move(targets_held.buffers);
  auto pending = std::make_unique<PendingBatch<absl::StatusOr<size_t>>>(client, std::move(held),
                                                                        ErrorMode::kRaise);
  pending->Start(client->GetPrefixAsync(batch.views, spans));
  return pending;
}

}  // namespace

void BindAsync(py::module_& m, PyClientClass& client) {
  py::class_<PyPending>(m, "Pending", R"doc(
A transfer running in the background (returned by the *_async calls).
wait() blocks, with the GIL released, until it is done and returns what the
synchronous call would (or raises its error); done() says whether wait()
would return at once. The buffers stay held until the transfer ends; dropping
the handle waits for it.)doc")
      .def("done", &PyPending::Done)
      .def("wait", &PyPending::Wait);
  client.def("batch_get_into_async", &BatchGetAsync, py::arg("keys"), py::arg("targets"),
             py::kw_only(), py::arg("errors") = "raise",
             "batch_get_into in the background: returns a Pending; several may be in flight.");
  client.def("batch_put_async", &BatchPutAsync, py::arg("keys"), py::arg("values"), py::kw_only(),
             py::arg("replace") = false, py::arg("replicas") = 1, py::arg("errors") = "raise",
             "batch_put in the background: returns a Pending.");
  client.def("get_prefix_into_async", &GetPrefixAsync, py::arg("keys"), py::arg("targets"),
             "get_prefix_into in the background: returns a Pending.");
}

}  // namespace unipool::python
