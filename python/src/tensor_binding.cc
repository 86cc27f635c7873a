// unipool.Client's tensor and model calls: tensors come back as numpy arrays
// of their dtype and shape, read straight into the array's memory with the
// GIL released.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "buffers.h"
#include "client_binding.h"
#include "errors.h"

namespace unipool::python {
namespace py = pybind11;
namespace {

// numpy's name for each safetensors dtype. numpy has no bfloat16 nor 8-bit
// floats: their elements come back as raw bits (uint16, uint8), which
// torch.from_numpy(a.view(numpy.int16)).view(torch.bfloat16) reinterprets without a copy.
struct DTypeName {
  std::string_view safetensors;
  const char* numpy;
};
constexpr DTypeName kDTypes[] = {
    {"F64", "float64"},   {"F32", "float32"},   {"F16", "float16"},   {"BF16", "uint16"},
    {"F8_E4M3", "uint8"}, {"F8_E5M2", "uint8"}, {"F8_E8M0", "uint8"}, {"I64", "int64"},
    {"I32", "int32"},     {"I16", "int16"},     {"I8", "int8"},       {"U64", "uint64"},
    {"U32", "uint32"},    {"U16", "uint16"},    {"U8", "uint8"},      {"BOOL", "bool"},
    {"C64", "complex64"},
};

py::dtype NumpyDType(const TensorInfo& info) {
  for (const DTypeName& d : kDTypes) {
    if (d.safetensors == info.dtype) return py::dtype(d.numpy);
  }
  Raise(absl::InvalidArgumentError(
      absl::StrFormat("tensor '%s' has dtype %s, which has no numpy type", info.name, info.dtype)));
}

// The safetensors dtype of an array: `dtype` when given (BF16 for uint16
// bits, F8_* for uint8 bits), else its numpy dtype's counterpart.
std::string SafetensorsDType(const py::array& array, const std::string& dtype,
                             const std::string& name) {
  if (!dtype.empty()) return dtype;
  std::string numpy = py::str(array.dtype());
  for (const DTypeName& d : kDTypes) {
    // BF16 and F8_* share uint16 / uint8 with U16 / U8: only by request.
    if (numpy == d.numpy && d.safetensors != "BF16" && !d.safetensors.starts_with("F8")) {
      return std::string(d.safetensors);
    }
  }
  RaiseTypeError(absl::StrFormat("put_tensor '%s': numpy dtype %s has no safetensors counterpart",
                                 name, numpy));
}

py::array EmptyArray(const TensorInfo& info, std::vector<uint64_t> shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array(NumpyDType(info), dims);
}

std::span<uint8_t> Bytes(py::array& array) {
  return {static_cast<uint8_t*>(array.mutable_data()), static_cast<size_t>(array.nbytes())};
}

TensorInfo Info(TensorClient& tensors, const std::string& name) {
  absl::StatusOr<TensorInfo> info;
  {
    py::gil_scoped_release release;
    info = tensors.GetTensorInfo(name);
  }
  if (!info.ok()) Raise(info.status());
  return *std::move(info);
}

py::array GetTensor(PyClient& self, const std::string& name) {
  std::shared_ptr<TensorClient> tensors = self.tensors();
  TensorInfo info = Info(*tensors, name);
  py::array array = EmptyArray(info, info.shape);
  std::span<uint8_t> out = Bytes(array);
  absl::StatusOr<uint64_t> read;
  {
    py::gil_scoped_release release;
    read = tensors->GetTensor(name, out);
  }
  if (!read.ok()) Raise(read.status());
  return array;
}

py::array GetTensorRows(PyClient& self, const std::string& name, uint64_t first, uint64_t count) {
  std::shared_ptr<TensorClient> tensors = self.tensors();
  TensorInfo info = Info(*tensors, name);
  if (info.shape.empty() || first > info.shape[0] || count > info.shape[0] - first) {
    Raise(absl::InvalidArgumentError(
        absl::StrFormat("get_tensor_rows '%s': rows [%d, %d) are not within its %d rows", name,
                        first, first + count, info.shape.empty() ? 0 : info.shape[0])));
  }
  std::vector<uint64_t> shape = info.shape;
  shape[0] = count;
  py::array array = EmptyArray(info, shape);
  std::span<uint8_t> out = Bytes(array);
  absl::StatusOr<uint64_t> read;
  {
    py::gil_scoped_release release;
    read = tensors->GetTensorRows(name, first, count, out);
  }
  if (!read.ok()) Raise(read.status());
  return array;
}

py::dict InfoDict(const TensorInfo& info) {
  py::dict d;
  d["name"] = info.name;
  d["model"] = info.model;
  d["dtype"] = info.dtype;
  d["numpy_dtype"] = NumpyDType(info);
  d["shape"] = py::tuple(py::cast(info.shape));
  d["length"] = info.length;
  d["stripe_size"] = info.stripe_size;
  d["created_unix_ms"] = info.created_unix_ms;
  py::list stripes;
  for (const TensorStripe& s : info.stripes) {
    py::dict stripe;
    stripe["checksum"] = s.checksum;
    stripe["nodes"] = s.node_ids;
    stripe["nodes_up"] = std::vector<bool>(s.nodes_up);
    stripes.append(stripe);
  }
  d["stripes"] = stripes;
  return d;
}

py::dict LoadModel(PyClient& self, const std::string& name) {
  std::shared_ptr<TensorClient> tensors = self.tensors();
  absl::StatusOr<ModelInfo> model;
  {
    py::gil_scoped_release release;
    model = tensors->GetModelInfo(name);
  }
  if (!model.ok()) Raise(model.status());
  py::dict out;
  for (const TensorInfo& t : model->tensors) {
    py::array array = EmptyArray(t, t.shape);
    std::span<uint8_t> bytes = Bytes(array);
    std::string full = name + "/" + t.name;
    absl::StatusOr<uint64_t> read;
    {
      py::gil_scoped_release release;
      read = tensors->GetTensor(full, bytes);
    }
    if (!read.ok()) Raise(read.status());
    out[py::str(t.name)] = array;
  }
  return out;
}

void PutTensor(PyClient& self, const std::string& name, const py::array& array,
               const std::string& dtype, uint64_t stripe_size, int replicas) {
  std::shared_ptr<TensorClient> tensors = self.tensors();
  std::string safetensors = SafetensorsDType(array, dtype, name);
  std::vector<uint64_t> shape(array.shape(), array.shape() + array.ndim());
  HeldBuffer held =
      HeldBuffer::ForRead(array, [&] { return absl::StrFormat("put_tensor '%s'", name); });
  absl::Status status;
  {
    py::gil_scoped_release release;
    status = tensors->PutTensor(name, safetensors, shape, held.bytes(),
                                TensorPutOptions{.stripe_size = stripe_size, .replicas = replicas});
  }
  Check(status);
}

}  // namespace

void BindTensors(PyClientClass& cls) {
  cls.def("get_tensor", &GetTensor, py::arg("name"), R"doc(
The tensor as a new numpy array of its dtype and shape, read from all its
nodes at once straight into the array. numpy has no bfloat16 nor 8-bit
floats: BF16 comes back as uint16 (the raw bits;
torch.from_numpy(a.view(numpy.int16)).view(torch.bfloat16) reinterprets them without a copy),
F8_E4M3, F8_E5M2 and F8_E8M0 as uint8. Raises NotFound for an unknown name.)doc");
  cls.def("get_tensor_rows", &GetTensorRows, py::arg("name"), py::arg("first"), py::arg("count"),
          R"doc(
Rows [first, first + count) of the tensor's first dimension (a tensor-parallel
shard), as get_tensor returns them; only the stripes holding them are read.)doc");
  cls.def(
      "tensor_info",
      [](PyClient& self, const std::string& name) { return InfoDict(Info(*self.tensors(), name)); },
      py::arg("name"), R"doc(
The tensor's name, model, dtype (safetensors name), numpy_dtype, shape
(tuple), length (bytes), stripe_size, created_unix_ms and stripes (one dict
per stripe: checksum, nodes, nodes_up).)doc");
  cls.def("load_model", &LoadModel, py::arg("name"), R"doc(
Every tensor of model `name` (loaded with `unipoolctl model load`), as a dict
of tensor name (within the model) -> numpy array, in file order; dtypes as
get_tensor.)doc");
  cls.def("put_tensor", &PutTensor, py::arg("name"), py::arg("array"), py::kw_only(),
          py::arg("dtype") = "", py::arg("stripe_size") = uint64_t{64} << 20,
          py::arg("replicas") = 1, R"doc(
Stores a C-contiguous numpy array as tensor `name` with its shape, striped
over the nodes (stripe_size bytes per stripe, replicas copies of each).
dtype: the safetensors name; by default the array's (float32 -> F32,
int8 -> I8, ...); give "BF16" for uint16 bfloat16 bits and "F8_E4M3" or
"F8_E5M2" for uint8 float8 bits. Raises AlreadyExists when the name is taken.)doc");
}

}  // namespace unipool::python
