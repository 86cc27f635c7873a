// absl::Status -> the Python exceptions of unipool.errors (one class per code,
// all under unipool.Error), carrying the message the SDK or server gave.
#ifndef UNIPOOL_PYTHON_ERRORS_H_
#define UNIPOOL_PYTHON_ERRORS_H_

#include <pybind11/pybind11.h>

#include <string_view>

#include "absl/status/status.h"

namespace unipool::python {

// The unipool.errors exception object for `status` (not raised). REQUIRES:
// !status.ok() and the GIL held.
pybind11::object ExceptionFor(const absl::Status& status);

// Raises ExceptionFor(status) as a Python exception (throws
// pybind11::error_already_set). REQUIRES: !status.ok() and the GIL held.
[[noreturn]] void Raise(const absl::Status& status);

// Raises when `status` is not OK.
inline void Check(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}

// Raises Python's TypeError with `message`.
[[noreturn]] void RaiseTypeError(std::string_view message);

}  // namespace unipool::python

#endif  // UNIPOOL_PYTHON_ERRORS_H_
