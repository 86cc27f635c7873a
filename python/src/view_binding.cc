// unipool.View and Client.get_view / get_prefix_views: zero-copy, read-only
// views of objects in the slab of a node on this machine (unipool/view.h
// says what a view guarantees). A View exports its bytes through the buffer
// protocol, read-only: memoryview(view) and numpy.frombuffer(view, dtype)
// read the node's memory with no copy, and keep the View alive; the view is
// released (its lease renewals end, its bytes leave max_view_bytes) when the
// last of them goes.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client_binding.h"
#include "conversions.h"
#include "errors.h"
#include "unipool/view.h"

namespace unipool::python {
namespace py = pybind11;
namespace {

// A PageView and the Client that made it (which must outlive it).
class PyView {
 public:
  PyView(PageView view, std::shared_ptr<Client> client)
      : view_(std::move(view)), client_(std::move(client)) {}
  PyView(PyView&&) noexcept = default;
  PyView& operator=(PyView&&) noexcept = default;
  ~PyView() {
    view_ = PageView();  // before the client it needs
    client_.reset();
  }
  const PageView& view() const { return view_; }

 private:
  PageView view_;
  std::shared_ptr<Client> client_;
};

PyView GetView(PyClient& self, const std::string& key) {
  std::shared_ptr<Client> client = self.client();
  absl::StatusOr<PageView> view;
  {
    py::gil_scoped_release release;
    view = client->GetView(key);
  }
  if (!view.ok()) Raise(view.status());
  return PyView(std::move(*view), std::move(client));
}

std::vector<PyView> GetPrefixViews(PyClient& self, std::vector<std::string> keys) {
  std::shared_ptr<Client> client = self.client();
  KeyBatch batch(std::move(keys));
  absl::StatusOr<std::vector<PageView>> views;
  {
    py::gil_scoped_release release;
    views = client->GetPrefixViews(batch.views);
  }
  if (!views.ok()) Raise(views.status());
  std::vector<PyView> out;
  out.reserve(views->size());
  for (PageView& view : *views) out.emplace_back(std::move(view), client);
  return out;
}

}  // namespace

void BindViews(py::module_& module, PyClientClass& client) {
  py::class_<PyView>(module, "View", py::buffer_protocol(), R"doc(
Read-only bytes of one object, straight in the slab of a node on this
machine (Client.get_view). memoryview(view) or numpy.frombuffer(view, dtype)
read them with no copy. They stay valid and unchanged while any of these
lives, even when the key is removed or evicted; the view is released when
the last reference goes.
)doc")
      .def_buffer([](PyView& v) {
        const PageView& view = v.view();
        return py::buffer_info(const_cast<uint8_t*>(view.data()), 1,
                               py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(view.size())}, {1}, /*readonly=*/true);
      })
      .def_property_readonly("key", [](const PyView& v) { return std::string(v.view().key()); })
      .def_property_readonly("nbytes", [](const PyView& v) { return v.view().size(); })
      .def("__len__", [](const PyView& v) { return v.view().size(); })
      .def_property_readonly(
          "stale", [](const PyView& v) { return v.view().stale(); },
          "True once the node holding the bytes has ended.")
      .def_property_readonly(
          "detached", [](const PyView& v) { return v.view().detached(); },
          "True once the key was removed, replaced or evicted: the bytes are now private.");

  client.def("get_view", &GetView, py::arg("key"), R"doc(
A read-only View of key's bytes in the slab of a node on this machine, no
copy; its checksum is verified first. Raises NotFound, FailedPrecondition
(no copy on a node of this machine that shares its slab: use get_into),
ResourceExhausted (past the client's max_view_bytes), DataLoss.
)doc");
  client.def("get_prefix_views", &GetPrefixViews, py::arg("keys"), R"doc(
Views of the present prefix of keys (one lookup, as get_prefix_into): a list
as long as the prefix, view i of keys[i].
)doc");
  client.def(
      "view_bytes", [](PyClient& self) { return self.client()->view_bytes(); },
      "Bytes held by this client's views now.");
}

}  // namespace unipool::python
