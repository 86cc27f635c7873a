// unipool.Client: the SDK's Client for Python. Every call that talks to the
// pool or copies page bytes runs with the GIL released, so Python threads
// transfer at once.
//
// Thread safety: a PyClient is used with the GIL held (pybind11 holds it on
// entry); the Client it shares is thread-safe, and a call in flight keeps it
// alive while another thread closes the PyClient.
#ifndef UNIPOOL_PYTHON_CLIENT_BINDING_H_
#define UNIPOOL_PYTHON_CLIENT_BINDING_H_

#include <pybind11/pybind11.h>

#include <memory>

#include "unipool/client.h"
#include "unipool/tensor.h"

namespace unipool::python {

class PyClient {
 public:
  PyClient(std::shared_ptr<Client> client, ClientOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  // The connected client; raises unipool.FailedPrecondition once closed.
  std::shared_ptr<Client> client() const;
  // The tensor client, connected with the same options on first use (the
  // tensor calls); raises as client() does, or the connection's error.
  // REQUIRES: the GIL held (released while connecting).
  std::shared_ptr<TensorClient> tensors();
  // Drops this handle's references; calls still in flight finish first.
  void Close() {
    client_.reset();
    tensors_.reset();
  }
  bool closed() const { return client_ == nullptr; }

 private:
  std::shared_ptr<Client> client_;  // null once closed; guarded by the GIL
  const ClientOptions options_;
  std::shared_ptr<TensorClient> tensors_;  // null until used; guarded by the GIL
};

using PyClientClass = pybind11::class_<PyClient>;

// Defines unipool._unipool.Client (and its synchronous calls) in `module`.
PyClientClass BindClient(pybind11::module_& module);
// Adds the *_async calls and the handle type they return.
void BindAsync(pybind11::module_& module, PyClientClass& client);
// Adds the tensor and model calls (tensor_binding.cc).
void BindTensors(PyClientClass& client);
// Defines unipool._unipool.View and adds get_view, get_prefix_views
// (view_binding.cc).
void BindViews(pybind11::module_& module, PyClientClass& client);

}  // namespace unipool::python

#endif  // UNIPOOL_PYTHON_CLIENT_BINDING_H_
