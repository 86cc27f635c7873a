// unipool._unipool: the compiled half of the Python package `unipool`
// (unipool/__init__.py re-exports it with the pure-Python errors and kv).
#include <pybind11/pybind11.h>

#include "client_binding.h"

PYBIND11_MODULE(_unipool, m) {
  m.doc() = "unipool's client SDK for Python (use the package `unipool`).";
  unipool::python::PyClientClass client = unipool::python::BindClient(m);
  unipool::python::BindAsync(m, client);
  unipool::python::BindTensors(client);
  unipool::python::BindViews(m, client);
}
