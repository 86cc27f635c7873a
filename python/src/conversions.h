// The SDK's result structs as Python dicts and lists, and per-key batch
// results as Python lists (a failed key raises, or is returned as its
// exception object, as the caller asked with errors="raise" / "return").
#ifndef UNIPOOL_PYTHON_CONVERSIONS_H_
#define UNIPOOL_PYTHON_CONVERSIONS_H_

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "errors.h"
#include "unipool/client.h"
#include "unipool/pool_types.h"

namespace unipool::python {

pybind11::dict ToDict(const ObjectInfo& info);
pybind11::dict ToDict(const PoolState& state);
pybind11::dict ToDict(const ListEntry& entry);
pybind11::dict ToDict(const ClientStats& stats);

// What a batch call does with a key that failed.
enum class ErrorMode {
  kRaise,   // raise the first failed key's exception
  kReturn,  // put the exception object in that key's place in the result list
};
// "raise" or "return"; anything else raises unipool.InvalidArgument.
ErrorMode ParseErrorMode(std::string_view errors);

// The per-key results as a list. REQUIRES: the GIL held.
template <typename T>
pybind11::list ResultList(const std::vector<absl::StatusOr<T>>& results, ErrorMode mode) {
  pybind11::list out;
  for (const absl::StatusOr<T>& result : results) {
    if (result.ok()) {
      out.append(pybind11::cast(*result));
    } else if (mode == ErrorMode::kRaise) {
      Raise(result.status());
    } else {
      out.append(ExceptionFor(result.status()));
    }
  }
  return out;
}
pybind11::list ResultList(const std::vector<absl::Status>& results, ErrorMode mode);

// Keys with string_views into them, for the SDK's batch calls. Not movable:
// the views point into `keys`.
struct KeyBatch {
  explicit KeyBatch(std::vector<std::string> k);
  KeyBatch(const KeyBatch&) = delete;
  KeyBatch& operator=(const KeyBatch&) = delete;

  const std::vector<std::string> keys;
  std::vector<std::string_view> views;
};

}  // namespace unipool::python

#endif  // UNIPOOL_PYTHON_CONVERSIONS_H_
