#include "buffers.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "errors.h"
#include "unipool/common/protocol.h"

namespace unipool::python {
namespace py = pybind11;

namespace {

std::string TypeName(py::handle object) {
  return py::str(py::type::handle_of(object).attr("__name__"));
}

}  // namespace

HeldBuffer HeldBuffer::ForRead(py::handle object, Describe what) {
  return Acquire(object, /*writable=*/false, what);
}

HeldBuffer HeldBuffer::ForWrite(py::handle object, Describe what) {
  return Acquire(object, /*writable=*/true, what);
}

HeldBuffer HeldBuffer::Acquire(py::handle object, bool writable, Describe what) {
  if (!PyObject_CheckBuffer(object.ptr())) {
    RaiseTypeError(absl::StrFormat(
        "%s: %s must support the buffer protocol (bytes, bytearray, memoryview, numpy array, "
        "torch_tensor.numpy()), not %s",
        what(), writable ? "the target" : "the value", TypeName(object)));
  }
  HeldBuffer held;
  // PyBUF_STRIDES accepts strided exporters, so a non-contiguous array gets
  // the clear error below instead of numpy's BufferError.
  int flags = PyBUF_STRIDES | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(object.ptr(), &held.view_, flags) != 0) {
    PyErr_Clear();
    Raise(absl::InvalidArgumentError(
        absl::StrFormat("%s: the target (%s) is read-only; pass a writable buffer such as a "
                        "bytearray or a numpy array",
                        what(), TypeName(object))));
  }
  held.held_ = true;
  if (!PyBuffer_IsContiguous(&held.view_, 'C')) {
    Raise(absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s (%s) is not C-contiguous; pass a contiguous array (numpy.ascontiguousarray, "
        "tensor.contiguous())",
        what(), writable ? "the target" : "the value", TypeName(object))));
  }
  return held;
}

HeldBuffer::HeldBuffer(HeldBuffer&& other) noexcept
    : view_(other.view_), held_(std::exchange(other.held_, false)) {}

HeldBuffer& HeldBuffer::operator=(HeldBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    view_ = other.view_;
    held_ = std::exchange(other.held_, false);
  }
  return *this;
}

HeldBuffer::~HeldBuffer() { Release(); }

void HeldBuffer::Release() {
  if (held_) PyBuffer_Release(&view_);
  held_ = false;
}

std::vector<HeldBuffer> HoldAll(py::sequence objects, bool writable, std::string_view call,
                                const std::vector<std::string>& keys) {
  if (objects.size() != keys.size()) {
    Raise(absl::InvalidArgumentError(absl::StrFormat("%s: %d keys but %d %s", call, keys.size(),
                                                     objects.size(),
                                                     writable ? "targets" : "values")));
  }
  std::vector<HeldBuffer> held;
  held.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    auto what = [&] { return absl::StrFormat("%s '%s'", call, PrintableKey(keys[i])); };
    held.push_back(writable ? HeldBuffer::ForWrite(objects[i], what)
                            : HeldBuffer::ForRead(objects[i], what));
  }
  return held;
}

HeldTargets HoldTargets(py::handle targets, std::string_view call,
                        const std::vector<std::string>& keys) {
  HeldTargets held;
  if (!PyObject_CheckBuffer(targets.ptr())) {
    held.buffers =
        HoldAll(py::reinterpret_borrow<py::sequence>(targets), /*writable=*/true, call, keys);
    for (const HeldBuffer& h : held.buffers) held.pieces.push_back(h.writable());
    return held;
  }
  held.buffers.push_back(HeldBuffer::ForWrite(
      targets, [&] { return absl::StrFormat("%s: the target of %d keys", call, keys.size()); }));
  std::span<uint8_t> whole = held.buffers[0].writable();
  if (keys.empty()) return held;
  if (whole.size() % keys.size() != 0) {
    Raise(absl::InvalidArgumentError(
        absl::StrFormat("%s: one target of %d bytes does not split into %d equal pieces, one per "
                        "key; pass a buffer of keys x page bytes, or a list of buffers",
                        call, whole.size(), keys.size())));
  }
  size_t piece = whole.size() / keys.size();
  for (size_t i = 0; i < keys.size(); ++i) held.pieces.push_back(whole.subspan(i * piece, piece));
  return held;
}

}  // namespace unipool::python
