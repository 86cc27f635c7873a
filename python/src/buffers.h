// A Python object's memory, held through the buffer protocol so the SDK can
// read from it or write into it with the GIL released: while held, the
// object cannot be resized or freed (bytearray refuses to resize, numpy and
// memoryview keep their exports).
//
// Thread safety: acquire and release with the GIL held; the bytes themselves
// may be used from any thread in between.
#ifndef UNIPOOL_PYTHON_BUFFERS_H_
#define UNIPOOL_PYTHON_BUFFERS_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"

namespace unipool::python {

class HeldBuffer {
 public:
  // The value of a put: any C-contiguous buffer (bytes, bytearray,
  // memoryview, numpy array, torch_tensor.numpy()). Raises TypeError for an
  // object without the buffer protocol and unipool.InvalidArgument for a
  // non-contiguous one; `what` names the call and key in the message (only
  // called on an error: batches hold thousands of buffers per call).
  using Describe = absl::FunctionRef<std::string()>;
  static HeldBuffer ForRead(pybind11::handle object, Describe what);
  // The target of a get: as above, and writable.
  static HeldBuffer ForWrite(pybind11::handle object, Describe what);

  HeldBuffer() = default;
  HeldBuffer(HeldBuffer&& other) noexcept;
  HeldBuffer& operator=(HeldBuffer&& other) noexcept;
  HeldBuffer(const HeldBuffer&) = delete;
  HeldBuffer& operator=(const HeldBuffer&) = delete;
  ~HeldBuffer();  // REQUIRES: the GIL held

  std::span<const uint8_t> bytes() const { return {data(), size()}; }
  std::span<uint8_t> writable() const { return {data(), size()}; }

 private:
  static HeldBuffer Acquire(pybind11::handle object, bool writable, Describe what);
  uint8_t* data() const { return static_cast<uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }
  void Release();

  Py_buffer view_{};
  bool held_ = false;
};

// One held buffer per item of a Python sequence, for the batch calls.
std::vector<HeldBuffer> HoldAll(pybind11::sequence objects, bool writable, std::string_view call,
                                const std::vector<std::string>& keys);

// The targets of a batch read: a sequence of buffers, one per key, or one
// writable buffer (e.g. a 2-D array, a row per key) cut into equal pieces,
// which costs one buffer request instead of one per key.
struct HeldTargets {
  std::vector<HeldBuffer> buffers;
  std::vector<std::span<uint8_t>> pieces;  // one per key
};
HeldTargets HoldTargets(pybind11::handle targets, std::string_view call,
                        const std::vector<std::string>& keys);

}  // namespace unipool::python

#endif  // UNIPOOL_PYTHON_BUFFERS_H_
