#include "errors.h"

#include <string>

namespace unipool::python {
namespace py = pybind11;
namespace {

// The class in unipool/errors.py for each code; codes without one of their
// own are plain unipool.Error.
const char* ClassName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return "Unavailable";
    case absl::StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case absl::StatusCode::kDataLoss:
      return "DataLoss";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "InvalidArgument";
    case absl::StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case absl::StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case absl::StatusCode::kAborted:
      return "Aborted";
    case absl::StatusCode::kUnauthenticated:
      return "Unauthenticated";
    case absl::StatusCode::kPermissionDenied:
      return "PermissionDenied";
    default:
      return "Error";
  }
}

}  // namespace

py::object ExceptionFor(const absl::Status& status) {
  py::object cls = py::module_::import("unipool.errors").attr(ClassName(status.code()));
  py::object error = cls(std::string(status.message()));
  error.attr("code") = py::str(absl::StatusCodeToString(status.code()));
  return error;
}

void Raise(const absl::Status& status) {
  py::object error = ExceptionFor(status);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

void RaiseTypeError(std::string_view message) {
  PyErr_SetString(PyExc_TypeError, std::string(message).c_str());
  throw py::error_already_set();
}

}  // namespace unipool::python
